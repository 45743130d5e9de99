"""The heartbeat: a thread and a database connection of its own.

The heartbeat used to be written by the database writer between two results; a writer stuck
retrying (a full disk, a lock held elsewhere) then stopped the heartbeat too, and with it the
instrument checks, so nobody heard of the full disk and ``stemwatch status`` called a living
daemon dead. This thread beats every ``interval_s`` on its own connection, whatever the writer
does, and every ``checks_interval_s`` asks the alert thread for a round of instrument checks
(stall, failures, free disk space, the watched folder), which also run on a connection of
their own. When even the heartbeat cannot be written, it logs that and keeps trying.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from stemwatch import store
from stemwatch.core.errors import StemwatchError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DaemonLoad:
    """What the heartbeat reports: a line for people, and the daemon's queue (images found
    and not yet analysed)."""

    detail: str
    queued: int


class Heartbeat:
    """Beats into ``db`` every ``interval_s`` and calls ``checks`` every ``checks_interval_s``."""

    def __init__(
        self,
        db: store.Database,
        *,
        interval_s: float,
        load: Callable[[], DaemonLoad],
        checks: Callable[[], None] | None = None,
        checks_interval_s: float = 60.0,
    ) -> None:
        self.db = db
        self.interval_s = interval_s
        self.load = load
        self.checks = checks
        self.checks_interval_s = checks_interval_s
        self._stop = threading.Event()
        self.beats = 0  # heartbeats written (tests and the benchmark wait on it)
        self.failing = False

    def beat(self, state: str = "running") -> bool:
        """Write one heartbeat now; False (and a log line) when it could not be written."""
        load = self.load()
        try:
            store.beat(
                self.db,
                state=state,
                detail=load.detail,
                queued=load.queued,
                interval_s=self.interval_s,
            )
        except StemwatchError as exc:
            if not self.failing:
                log.error("heartbeat: cannot write it (%s); will keep trying", exc)
            self.failing = True
            return False
        if self.failing:
            log.warning("heartbeat: written again")
        self.failing = False
        self.beats += 1
        return True

    def run(self) -> None:
        """Beat until :meth:`stop`; the caller runs this in a (supervised) thread."""
        next_checks = time.monotonic() + self.checks_interval_s
        while not self._stop.is_set():
            self.beat()
            now = time.monotonic()
            if self.checks is not None and now >= next_checks:
                self.checks()
                next_checks = now + self.checks_interval_s
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
