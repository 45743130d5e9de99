"""When is a file completely written, and which versions are already recorded?

Filesystem events are only hints: instruments create a file, write it in chunks (or under a
temporary name and rename it into place), sometimes rewrite it. :class:`StabilityTracker` is
pure logic (time is an argument): a path is *due* once it had no events for the quiet period,
and *stable* once its size, mtime and ctime did not change across that period. Then the pipeline
checks the file itself (:func:`stemwatch.core.imaging.check_file`: every page's structure lies
inside the file and the page count matches the OME metadata) before decoding it.
:class:`SettledFiles` remembers the versions recorded lately, so rescans skip them cheaply.
"""

from __future__ import annotations

import enum
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileStat:
    """What the stability test compares: size, mtime and the inode change time.

    The ctime changes on every write and cannot be set from user space, so a rewrite that
    keeps the size and the mtime (a re-export preserving the acquisition time stamp) still
    shows as a new version; a chmod or a rename changes it too (the file is then read again
    and its content hash finds it unchanged).
    """

    size: int
    mtime_ns: int
    ctime_ns: int | None = None

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(int(st.st_size), int(st.st_mtime_ns), int(st.st_ctime_ns))


def stat_file(path: Path) -> FileStat | None:
    """The file's :class:`FileStat`, or ``None`` when it is gone or not a regular file."""
    try:
        st = path.stat()
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return FileStat.of(st)


class Verdict(enum.Enum):
    WAIT = "wait"  # changed since last look: wait another quiet period
    STABLE = "stable"  # unchanged across the quiet period: hand it on
    GONE = "gone"  # deleted or moved away meanwhile


@dataclass
class _Entry:
    last_event: float
    stat: FileStat | None
    not_before: float = 0.0
    attempts: int = 0


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    stat: FileStat | None = None
    attempts: int = 0


class StabilityTracker:
    """Tracks candidate files until each is quiet and unchanged for ``quiet_s`` seconds."""

    def __init__(self, quiet_s: float) -> None:
        self.quiet_s = quiet_s
        self._entries: dict[Path, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def hint(
        self, path: Path, now: float, stat: FileStat | None, *, quiet_since: float | None = None
    ) -> None:
        """An event (or a scan) saw ``path`` at ``now`` with ``stat`` (``None``: not stat'ed).

        ``quiet_since`` (a scan of an old file) says when the file last changed; by default the
        event itself counts as the change. A changed stat resets the retry count.
        """
        since = now if quiet_since is None else min(now, quiet_since)
        entry = self._entries.get(path)
        if entry is None:
            self._entries[path] = _Entry(last_event=since, stat=stat)
            return
        entry.last_event = max(entry.last_event, since)
        if stat is not None:
            if entry.stat is not None and stat != entry.stat:
                entry.attempts = 0
                entry.not_before = 0.0
            entry.stat = stat

    def forget(self, path: Path) -> None:
        self._entries.pop(path, None)

    def retry_later(self, path: Path, now: float, delay: float, attempts: int) -> None:
        """Track ``path`` again after a failed attempt; it is due no earlier than now + delay."""
        self._entries[path] = _Entry(
            last_event=now, stat=None, not_before=now + delay, attempts=attempts
        )

    def due(self, now: float, exclude: set[Path] | frozenset[Path] = frozenset()) -> list[Path]:
        """Paths quiet for the whole quiet period (and past any retry delay), oldest first."""
        ready = [
            (e.last_event, p)
            for p, e in self._entries.items()
            if now - e.last_event >= self.quiet_s and now >= e.not_before and p not in exclude
        ]
        return [p for _, p in sorted(ready)]

    def confirm(self, path: Path, now: float, stat: FileStat | None) -> Decision:
        """Compare the current ``stat`` with the one seen before the quiet period."""
        entry = self._entries.get(path)
        if entry is None:
            return Decision(Verdict.GONE)
        if stat is None:
            del self._entries[path]
            return Decision(Verdict.GONE, attempts=entry.attempts)
        if entry.stat is None or stat != entry.stat:
            if entry.stat is not None:
                entry.attempts = 0
            entry.stat = stat
            entry.last_event = now
            return Decision(Verdict.WAIT, stat, entry.attempts)
        del self._entries[path]
        return Decision(Verdict.STABLE, stat, entry.attempts)

    def next_due_in(self, now: float) -> float | None:
        """Seconds until the next path can become due (for sleeping), ``None`` when empty."""
        if not self._entries:
            return None
        return max(
            0.0,
            min(
                max(e.last_event + self.quiet_s, e.not_before) - now for e in self._entries.values()
            ),
        )


def backoff_delay(attempt: int, initial_s: float, max_s: float) -> float:
    """Wait before attempt ``attempt + 1`` (``attempt`` >= 1): doubling from ``initial_s``."""
    return float(min(max_s, initial_s * 2 ** max(0, attempt - 1)))


class SettledFiles:
    """The last ``capacity`` recorded file versions (path -> :class:`FileStat`), the least
    recently used forgotten first.

    A cache in front of the database, which stays the authority: a path forgotten here is
    looked up there. Bounded, so a daemon that runs for months over millions of images holds a
    fixed amount of memory.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._stats: OrderedDict[Path, FileStat] = OrderedDict()

    def __len__(self) -> int:
        return len(self._stats)

    def __contains__(self, path: object) -> bool:
        return path in self._stats

    def get(self, path: Path) -> FileStat | None:
        """The remembered version of ``path`` (which then counts as recently used), or None."""
        stat = self._stats.get(path)
        if stat is not None:
            self._stats.move_to_end(path)
        return stat

    def __setitem__(self, path: Path, stat: FileStat) -> None:
        self._stats[path] = stat
        self._stats.move_to_end(path)
        while len(self._stats) > self.capacity:
            self._stats.popitem(last=False)

    def pop(self, path: Path, default: FileStat | None = None) -> FileStat | None:
        return self._stats.pop(path, default)
