"""Image times for people: the one place that knows what a ``time_basis`` means.

:mod:`stemwatch.core.platemeta` resolves each image's ``time_s`` together with its basis:
``elapsed`` (seconds since the experiment began: OME ``DeltaT``, an elapsed-time token in the
name) or a wall-clock time (``epoch``: an acquisition date; ``mtime``: the file's
modification time), both in seconds since the Unix epoch. The store keeps the basis, so
nothing has to guess it from the size of the number.
"""

from __future__ import annotations

import time

from stemwatch.core.platemeta import TimeBasis

CLOCK_BASES: frozenset[str] = frozenset({"epoch", "mtime"})


def is_clock_time(basis: TimeBasis | str | None) -> bool:
    """Whether times of this basis are wall-clock (epoch seconds), not elapsed time.
    An unknown basis (None) counts as elapsed."""
    return basis in CLOCK_BASES


def describe_time(time_s: float | None, basis: TimeBasis | str | None) -> str:
    """``36.0 h`` for elapsed time, ``2026-05-09 14:02`` (local time) for a wall-clock time,
    ``?`` when unknown."""
    if time_s is None:
        return "?"
    if is_clock_time(basis):
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(time_s))
    return f"{time_s / 3600:.1f} h"
