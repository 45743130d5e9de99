"""The daemon's threads, supervised: a thread that dies stops the whole daemon, loudly.

A worker thread that raises out of its loop used to vanish while the process lived on: no
result was stored any more, yet systemd saw a running service and never restarted it.
:class:`Supervisor` starts every long-lived thread of the daemon; when one ends with an
exception (or ends at all before it was told to stop) the supervisor records which and why,
logs it as critical and calls ``on_failure`` (the daemon sets its stop event). The daemon then
shuts down what it can and raises :class:`ThreadDiedError`, which the command line turns into exit
status :data:`EXIT_THREAD_DIED` so systemd's ``Restart=on-failure`` starts it again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from stemwatch.core.errors import StemwatchError

log = logging.getLogger(__name__)

EXIT_THREAD_DIED = 70  # EX_SOFTWARE


class ThreadDiedError(StemwatchError):
    """A thread of the daemon died; the daemon stopped (exit status 70)."""

    exit_code = EXIT_THREAD_DIED


@dataclass(frozen=True)
class Failure:
    thread: str
    error: BaseException | None  # None: the thread returned although it was not told to


class Supervisor:
    """Starts threads and watches them; the first failure triggers ``on_failure``."""

    def __init__(self, on_failure: Callable[[Failure], None]) -> None:
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self.failure: Failure | None = None
        self.stopping = threading.Event()  # set before a planned shutdown: returns are fine

    def thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        """A daemon thread running ``target`` under supervision (not started)."""

        def run() -> None:
            try:
                target()
            except BaseException as exc:
                self._fail(Failure(name, exc))
                return
            if not self.stopping.is_set():
                self._fail(Failure(name, None))

        return threading.Thread(target=run, name=name, daemon=True)

    def _fail(self, failure: Failure) -> None:
        with self._lock:
            first = self.failure is None
            if first:
                self.failure = failure
        if failure.error is not None:
            log.critical(
                "thread %s died (%s: %s); stopping the daemon so it can be restarted",
                failure.thread,
                type(failure.error).__name__,
                failure.error,
                exc_info=failure.error,
            )
        else:
            log.critical("thread %s ended unexpectedly; stopping the daemon", failure.thread)
        if first:
            self._on_failure(failure)

    def raise_if_failed(self) -> None:
        """Raise :class:`ThreadDiedError` when a supervised thread failed."""
        f = self.failure
        if f is None:
            return
        why = "ended unexpectedly" if f.error is None else f"{type(f.error).__name__}: {f.error}"
        raise ThreadDiedError(
            f"daemon thread {f.thread} died ({why}); the daemon stopped with exit status "
            f"{EXIT_THREAD_DIED} so that systemd restarts it (see the log for the traceback)"
        )
