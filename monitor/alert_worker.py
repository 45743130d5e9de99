"""Alert delivery off the writer's thread.

Delivering an alert means talking to chat services and mail servers, which can be slow or dead
(apprise waits out their time-outs). The database writer must not wait for them, so the
pipeline hands onset events, domain checks of a plate and instrument-check ticks to an
:class:`AlertWorker`, whose one thread calls the :class:`~monitor.alerts.Alerter` in order.
Nothing is dropped: the queue is unbounded (onsets are rare, and a plate's domain check
waits in it at most once) and closing the worker drains it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from monitor.alerts import Alerter
from monitor.supervise import Supervisor
from stemwatch import store

log = logging.getLogger(__name__)

_STOP = object()
_CHECKS = object()


@dataclass(frozen=True)
class _DomainCheck:
    plate: str
    model_hash: str
    name: str


class AlertWorker:
    """Runs an :class:`Alerter`'s ``onset``, ``domain`` and ``instrument_checks`` in a thread
    of its own."""

    def __init__(self, alerter: Alerter, supervisor: Supervisor | None = None) -> None:
        self.alerter = alerter
        self._queue: queue.Queue[Any] = queue.Queue()
        self._checks_pending = threading.Event()
        self._domain_pending: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        if supervisor is not None:
            self._thread = supervisor.thread(self._loop, "stemwatch-alerts")
        else:
            self._thread = threading.Thread(target=self._loop, name="stemwatch-alerts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def onset(self, event: store.OnsetRecord) -> None:
        """Queue an onset alert (recorded and delivered by the worker thread)."""
        self._queue.put(event)

    def domain(self, plate: str, model_hash: str, model_name: str) -> None:
        """Queue a domain check of ``plate`` (a check of it already waiting covers this one)."""
        key = (plate, model_hash, model_name)
        with self._lock:
            if key in self._domain_pending:
                return
            self._domain_pending.add(key)
        self._queue.put(_DomainCheck(*key))

    def instrument_checks(self) -> None:
        """Queue one round of instrument checks (run at the time the worker reaches it); a
        round already waiting covers this one."""
        if not self._checks_pending.is_set():
            self._checks_pending.set()
            self._queue.put(_CHECKS)

    def close(self, timeout_s: float = 30.0) -> None:
        """Deliver what is queued, then stop the thread."""
        if not self._thread.is_alive():
            return
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error(
                "alert delivery did not finish within %.0f s; %d item(s) left undelivered "
                "(onsets stay in the database)",
                timeout_s,
                self._queue.qsize(),
            )

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                if item is _CHECKS:
                    self._checks_pending.clear()
                    self.alerter.instrument_checks(time.time())
                elif isinstance(item, _DomainCheck):
                    with self._lock:
                        self._domain_pending.discard((item.plate, item.model_hash, item.name))
                    self.alerter.domain(item.plate, item.model_hash, item.name, now=time.time())
                else:
                    self.alerter.onset(item)
            except Exception:
                log.exception("alert delivery failed; the daemon goes on")
