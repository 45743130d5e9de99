"""The CPU cores this process may use (one owner: the daemon's plan, re-analysis, rendering)."""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["usable_cores"]

_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cores(cpu_max: Path = _CPU_MAX) -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota(cpu_max)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_quota(cpu_max: Path) -> float | None:
    """Cores allowed by a cgroup v2 ``cpu.max`` ("quota period" or "max period")."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None
