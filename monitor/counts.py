"""A run's totals, with one owner that every thread may use.

The pipeline's threads count what they finish: each candidate's outcome once, when it is
reported (see :meth:`Counts.outcome`), and the tiles, batches and seconds of each inference
batch. The heartbeat detail, the daemon's summary, ``stemwatch watch``'s last line and the
benchmark read :meth:`Counts.snapshot`; tests and the benchmark can wait for a condition on
the totals (:meth:`Counts.wait_for`) instead of sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

# outcome kind -> the total it adds to ("changed" is not an end: the file is looked at again)
_OUTCOME_TOTAL = {
    "done": "done",
    "failed": "failed",
    "duplicate": "duplicates",
    "gone": "gone",
    "ignored": "ignored",
    "retry": "retries",
    "moved": "moved",
}


@dataclass(frozen=True)
class RunSummary:
    """The totals of one run at one moment (:meth:`monitor.daemon.Daemon.run` returns the last)."""

    done: int = 0
    failed: int = 0
    duplicates: int = 0
    gone: int = 0
    ignored: int = 0  # skipped on purpose: analysis outputs, formats not read, channels
    retries: int = 0
    moved: int = 0  # moved or renamed after analysis: the record followed the file
    tiles: int = 0
    batches: int = 0
    infer_s: float = 0.0
    provider: str = ""


class Counts:
    """Thread-safe running totals; every change wakes the threads waiting in :meth:`wait_for`."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._totals = RunSummary()

    def add(self, **deltas: float) -> None:
        """Add to named totals, e.g. ``add(tiles=4, batches=1)``."""
        with self._changed:
            t = self._totals
            self._totals = replace(t, **{k: getattr(t, k) + v for k, v in deltas.items()})
            self._changed.notify_all()

    def outcome(self, kind: str) -> None:
        """Count one candidate's outcome (``done``, ``failed``, ``retry``, ...)."""
        total = _OUTCOME_TOTAL.get(kind)
        if total is not None:
            self.add(**{total: 1})

    def snapshot(self) -> RunSummary:
        with self._changed:
            return self._totals

    def wait_for(
        self, predicate: Callable[[RunSummary], bool], timeout_s: float | None = None
    ) -> RunSummary | None:
        """Block until ``predicate(totals)`` holds; the totals then, or ``None`` on timeout."""
        with self._changed:
            if self._changed.wait_for(lambda: predicate(self._totals), timeout_s):
                return self._totals
            return None
