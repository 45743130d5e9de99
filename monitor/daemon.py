"""The daemon's main loop: events and scans in, stable files out to the pipeline.

One thread (the caller's) owns the stability tracker. It drains the inbox (watchdog hints and
pipeline outcomes), hands files that are quiet and unchanged to the pipeline without ever
blocking on it, schedules retries with backoff, rescans the folder periodically and re-arms the
observer when the folder disappears and comes back. A folder that is missing at start (a share
not mounted yet at boot) is waited for the same way, with a log line and, after
``alerts.folder_missing_alert_s``, an instrument alert. ``stop`` (an Event) ends it: the batch
in flight is finished and flushed, every thread joined.

Before it opens anything the daemon claims the database (:func:`stemwatch.store.claim_daemon`):
a second daemon on the same database stops at once, naming the first. Every thread it starts
runs under a :class:`~monitor.supervise.Supervisor`; when one dies the daemon stops and
:meth:`Daemon.run` raises :class:`~monitor.supervise.ThreadDiedError` (exit status 70). The
heartbeat has a thread and a database connection of its own (:mod:`monitor.heartbeat`).

The model can be promoted without a restart (:mod:`monitor.promotion`): on SIGHUP
(:meth:`Daemon.request_model_reload`) or when the configured model file is replaced, the loop
loads the new model and swaps it into the pipeline; the switch is logged and stored.

What the loop is doing can be observed without sleeping: :attr:`Daemon.started` (the first
scan is done), :attr:`Daemon.watching` (an observer is armed on the folder),
:meth:`Daemon.sync` (everything queued so far is handled and nothing is left in flight) and
:attr:`Daemon.counts` (the run's totals, which threads can wait on).
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from monitor.config import MonitorConfig
from monitor.counts import Counts, RunSummary
from monitor.heartbeat import DaemonLoad, Heartbeat
from monitor.ignore import IgnoreFilter
from monitor.inference import CUDA, LoadedModel
from monitor.pipeline import Candidate, Outcome, Pipeline
from monitor.promotion import ModelFileWatch, load_configured_model, model_path
from monitor.scanner import scan_folder
from monitor.stability import FileStat, SettledFiles, StabilityTracker, Verdict, stat_file
from monitor.supervise import Failure, Supervisor
from monitor.watcher import Hint, start_observer, stop_observer
from monitor.workers import plan_workers
from stemwatch import store
from stemwatch.core.cores import usable_cores
from stemwatch.core.errors import ConfigError, StemwatchError
from stemwatch.core.paths import printable

__all__ = ["Daemon", "RunSummary", "check_folder"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Sync:
    """A request in the inbox: set ``done`` once everything before it is handled."""

    done: threading.Event
    rescan: bool


def check_folder(folder: Path | None, *, must_exist: bool = True) -> Path:
    """The watched folder, or a :class:`ConfigError` that says what is wrong.

    With ``must_exist=False`` (a running daemon) a missing folder is fine: it is waited for.
    """
    if folder is None:
        raise ConfigError("no folder to watch; pass FOLDER or set `folder:` in the config")
    if not folder.exists():
        if not must_exist:
            return folder
        raise ConfigError(f"{folder}: watched folder does not exist; check the path or mount")
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder; pass the folder the microscope writes to")
    return folder


def check_instrument_free(
    db: store.Database, instrument: str, *, host: str | None = None, now: float | None = None
) -> None:
    """A :class:`ConfigError` when a daemon on another computer is alive under ``instrument``
    in this database: two daemons writing as one instrument would mix their files, heartbeat
    and alerts. (One on this computer is this daemon restarted, or a second one watching
    another folder, which ``--instrument`` keeps apart too.) ``host``: this computer's name."""
    hb = store.last_heartbeat(db, instrument=instrument)
    here = socket.gethostname() if host is None else host
    if hb is None or hb.host in (None, here) or not hb.alive(now):
        return
    raise ConfigError(
        f"{db.source}: instrument {instrument!r} already has a running daemon on {hb.host} "
        f"(pid {hb.pid}, last heartbeat {hb.age_s(now):.0f} s ago); give this one its own name "
        "with --instrument or `instrument:` in the config"
    )


def _identity(folder: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if os.path.isdir(folder) else None


class Daemon:
    """Watch ``config.folder``, process every complete image once, until stopped."""

    def __init__(
        self,
        config: MonitorConfig,
        *,
        once: bool = False,
        stop: threading.Event | None = None,
        model: LoadedModel | None = None,
    ) -> None:
        self.config = config
        self.once = once
        self.stop = stop or threading.Event()
        self.folder = check_folder(config.folder, must_exist=once).absolute()
        if self.folder.is_dir():
            self.folder = self.folder.resolve()
        self.accept = IgnoreFilter.build(config.watch.suffixes, config.watch.ignore)
        self.tracker = StabilityTracker(config.watch.quiet_period_s)
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.pending: deque[Candidate] = deque()
        self.in_flight: set[Path] = set()
        self.settled = SettledFiles(config.watch.remembered_files)
        self.counts = Counts()
        self.started = threading.Event()
        self.watching = threading.Event()
        self._syncs: list[threading.Event] = []
        self.model = model or load_configured_model(config.inference)
        self.plan = plan_workers(  # threads sized once: a swapped-in model keeps them
            config.inference, cores=usable_cores(), gpu=self.model.provider == CUDA
        )
        log.info("workers: %s", self.plan.describe())
        self._reload = threading.Event()  # set by request_model_reload (a signal handler)
        self._reload_reason = "SIGHUP"
        self._model_watch = (
            ModelFileWatch(model_path(config.inference), config.watch.quiet_period_s)
            if config.inference.watch_model_file
            else None
        )
        self._observer: Any = None
        self._folder_id: tuple[int, int] | None = _identity(self.folder)
        self._rescan_due = 0.0
        self._db: store.Database | None = None  # the writer's
        self._read_db: store.Database | None = None  # this loop's "already recorded?"
        self._lookup_db: store.Database | None = None  # the decoders' (moved files)
        self._alert_db: store.Database | None = None  # the alert thread's
        self._beat_db: store.Database | None = None  # the heartbeat's
        self._lock: store.DaemonLock | None = None
        self.pipeline: Pipeline | None = None
        self.supervisor = Supervisor(self._thread_failed)
        self.heartbeat: Heartbeat | None = None
        self._heartbeat_thread: threading.Thread | None = None
        self._folder_waiting_logged = False

    # -- startup -------------------------------------------------------------------------

    def _thread_failed(self, failure: Failure) -> None:
        self.stop.set()
        self.inbox.put(Hint("rescan", self.folder))  # wake the loop

    def _open(self) -> None:
        from monitor.alerts import Alerter

        target, instrument = self.config.database, self.config.instrument_name
        self._lock = store.claim_daemon(target, instrument=instrument, watching=self.folder)
        self._db = store.open_db(target, instrument=instrument)
        check_instrument_free(self._db, instrument)
        self._read_db = store.open_db(target, readonly=True, instrument=instrument)
        self._lookup_db = store.open_db(target, readonly=True, instrument=instrument)
        self._alert_db = store.open_db(target, instrument=instrument)
        self._beat_db = store.open_db(target, instrument=instrument)
        previous = store.daemon_model_hash(self._db)
        store.register_model(
            self._db,
            model_hash=self.model.model_hash,
            name=self.model.metadata.name,
            metadata_json=self.model.metadata.to_json(),
            provider=self.model.provider,
        )
        store.record_model_switch(
            self._db,
            model_hash=self.model.model_hash,
            previous_hash=previous,
            reason="start",
            detail=str(self.model.path),
        )
        store.record_watched_folder(self._db, self.folder)  # the dashboard serves images from it
        store.beat(
            self._db,
            state="starting",
            detail=f"watching {printable(self.folder)}",
            interval_s=self.config.heartbeat_interval_s,
        )
        alerter = Alerter(
            self.config.alerts,
            self._alert_db,
            disk_paths=[self.folder] if self.folder.is_dir() else [],
            watched_folder=self.folder,
            domain=self.config.domain,
        )
        self.pipeline = Pipeline(
            self.config,
            self.model,
            self._db,
            self.inbox.put,
            alerter=alerter,
            counts=self.counts,
            lookup=self._lookup_db,
            supervisor=self.supervisor,
            plan=self.plan,
        )
        self.pipeline.start()
        worker = self.pipeline.alerter
        self.heartbeat = Heartbeat(
            self._beat_db,
            interval_s=self.config.heartbeat_interval_s,
            load=self._load,
            checks=worker.instrument_checks if worker is not None else None,
            checks_interval_s=self.config.instrument_check_interval_s,
        )
        self._heartbeat_thread = self.supervisor.thread(self.heartbeat.run, "stemwatch-heartbeat")
        self._heartbeat_thread.start()

    @property
    def summary(self) -> RunSummary:
        """The run's totals so far (thread-safe)."""
        return replace(self.counts.snapshot(), provider=self.model.provider)

    def sync(self, *, rescan: bool = True) -> threading.Event:
        """An event set once the loop has handled everything put in its inbox before this call
        (with ``rescan``, after rescanning the folder) and is idle: no file waiting, handed
        over or in flight. Also set when the daemon stops. Lets tests and tools wait for the
        daemon instead of sleeping."""
        done = threading.Event()
        self.inbox.put(_Sync(done, rescan))
        return done

    def _load(self) -> DaemonLoad:
        s = self.counts.snapshot()
        waiting, in_flight = len(self.tracker), len(self.in_flight)
        problems = []
        if self.pipeline is not None and self.pipeline.writer_problem:
            problems.append(self.pipeline.writer_problem)
        if self._folder_id is None:
            problems.append(f"waiting for the watched folder {printable(self.folder)}")
        return DaemonLoad(
            detail=(
                f"{s.done} done, {s.failed} failed, {s.ignored} skipped, {waiting} waiting, "
                f"{in_flight} in flight; {self.model.provider}"
                + "".join(f"; {p}" for p in problems)
            ),
            queued=waiting + in_flight,
        )

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> RunSummary:
        """Process until ``stop`` is set (or, with ``once``, until the folder is done)."""
        try:
            self._open()
            log.info(
                "stemwatch monitor: %s -> %s as instrument %r (quiet period %.1f s%s)",
                printable(self.folder),
                self._db.source if self._db is not None else self.config.database,
                self.config.instrument_name,
                self.config.watch.quiet_period_s,
                ", once" if self.once else "",
            )
            self._folder_id = _identity(self.folder)
            if self._folder_id is None:
                self._log_folder_missing()
            elif not self.once:
                self._arm_observer()
            self._rescan(time.monotonic())
            self.started.set()
            self._loop()
        finally:
            self._shutdown()
        self.supervisor.raise_if_failed()
        return self.summary

    def _log_folder_missing(self) -> None:
        log.warning(
            "%s: watched folder does not exist (a share not mounted yet?); waiting for it, "
            "checking every %.0f s (an alert follows after %.0f s)",
            printable(self.folder),
            self.config.watch.folder_check_interval_s,
            self.config.alerts.folder_missing_alert_s,
        )

    def _loop(self) -> None:
        watch = self.config.watch
        next_folder_check = time.monotonic() + watch.folder_check_interval_s
        next_model_check = time.monotonic() + self.config.inference.model_check_interval_s
        while not self.stop.is_set():
            now = time.monotonic()
            self._drain_inbox(now)
            self._collect_due(now)
            self._submit()
            if now >= next_folder_check:
                self._check_folder(now)
                next_folder_check = now + watch.folder_check_interval_s
            if self._reload.is_set() or now >= next_model_check:
                self._check_model(now)
                next_model_check = now + self.config.inference.model_check_interval_s
            if not self.once and now >= self._rescan_due:
                self._rescan(now)
            self._release_syncs()
            if self.once and self._idle():
                log.info("--once: every image in %s is processed", self.folder)
                return
            if self.pending:  # the pipeline is full: retry the hand-over soon
                timeout = 0.02
            else:
                wait = self.tracker.next_due_in(now)
                timeout = 0.1 if wait is None else min(0.1, max(0.005, wait))
            try:
                item = self.inbox.get(timeout=timeout)
            except queue.Empty:
                continue
            self._handle(item, time.monotonic())

    def _idle(self) -> bool:
        return not self.tracker and not self.pending and not self.in_flight

    def _release_syncs(self) -> None:
        if self._syncs and self._idle() and self.inbox.empty():
            for done in self._syncs:
                done.set()
            self._syncs.clear()

    def _drain_inbox(self, now: float) -> None:
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return
            self._handle(item, now)

    def _handle(self, item: Hint | Outcome | _Sync, now: float) -> None:
        if isinstance(item, Outcome):
            self._on_outcome(item, now)
            return
        if isinstance(item, _Sync):
            if item.rescan:
                self._rescan(now)
            self._syncs.append(item.done)
            return
        if item.kind == "rescan":
            self._rescan_due = min(self._rescan_due, now)
            return
        path = item.path
        if item.kind == "gone":
            self.tracker.forget(path)
            return
        if self.accept.reason(path, self.folder) is not None:
            return
        self.tracker.hint(path, now, stat_file(path))

    def _on_outcome(self, out: Outcome, now: float) -> None:
        """Settle or re-track the file (the pipeline has counted the outcome already)."""
        self.in_flight.discard(out.path)
        if out.kind == "failed" and out.retry_in_s > 0:  # transient: read again later
            self.settled.pop(out.path, None)
            self.tracker.retry_later(out.path, now, out.retry_in_s, 0)
        elif out.kind in ("done", "failed", "duplicate", "ignored", "moved"):
            if out.stat is not None:
                self.settled[out.path] = out.stat
        elif out.kind == "gone":
            self.settled.pop(out.path, None)
            self.tracker.forget(out.path)
        elif out.kind == "changed":
            self.tracker.hint(out.path, now, out.stat)
        elif out.kind == "retry":
            self.tracker.retry_later(out.path, now, out.retry_in_s, out.attempts)

    def _collect_due(self, now: float) -> None:
        room = 2 * self.plan.decode_workers + 2 - len(self.pending)
        if room <= 0:
            return
        for path in self.tracker.due(now, exclude=self.in_flight)[:room]:
            decision = self.tracker.confirm(path, now, stat_file(path))
            if decision.verdict is not Verdict.STABLE or decision.stat is None:
                continue
            if self._known(path, decision.stat, now):
                continue
            self.pending.append(Candidate(path, decision.stat, decision.attempts))
            self.in_flight.add(path)

    def _submit(self) -> None:
        assert self.pipeline is not None
        while self.pending and self.pipeline.try_submit(self.pending[0]):
            self.pending.popleft()

    def _known(self, path: Path, stat: FileStat, now: float) -> bool:
        """This version (path, size, mtime, ctime) needs no processing now: see
        :func:`stemwatch.store.recorded_version`. A transient failure that is not due yet is
        tracked until it is (never forgotten, never read early)."""
        if self.settled.get(path) == stat:
            return True
        assert self._read_db is not None
        try:
            version = store.FileVersion(str(path), stat.size, stat.mtime_ns, None, stat.ctime_ns)
            found = store.recorded_version(self._read_db, version)
        except Exception as exc:  # a locked or vanished database must not stop the loop
            log.warning("database: cannot check %s (%s); processing it", printable(path), exc)
            return False
        if found is None:
            return False
        if found.retry_at is not None:
            self.tracker.retry_later(path, now, max(0.0, found.retry_at - time.time()), 0)
        else:
            self.settled[path] = stat
        return True

    # -- promotion without a restart -----------------------------------------------------

    def request_model_reload(self, reason: str = "SIGHUP") -> None:
        """Take the configured model file anew at the loop's next turn (safe to call from a
        signal handler or another thread)."""
        self._reload_reason = reason
        self._reload.set()

    def _check_model(self, now: float) -> None:
        if self._reload.is_set():
            self._reload.clear()
            self._promote(self._reload_reason)
        elif self._model_watch is not None and self._model_watch.replaced(now):
            self._promote("model file replaced")

    def _promote(self, reason: str) -> None:
        """Load the configured model file and, if it is another model, switch to it."""
        path = model_path(self.config.inference)
        try:
            new = load_configured_model(self.config.inference, path)
        except StemwatchError as exc:
            log.error(
                "%s (%s): cannot take this model: %s; still scoring with %s (%s)",
                path,
                reason,
                exc,
                self.model.metadata.name,
                self.model.model_hash[:12],
            )
            return
        finally:
            if self._model_watch is not None:
                self._model_watch.settle()
        if new.model_hash == self.model.model_hash:
            log.info(
                "%s (%s): same model as in use (%s); nothing to switch",
                path,
                reason,
                new.model_hash[:12],
            )
            return
        assert self.pipeline is not None
        old = self.model
        self.pipeline.swap_model(new, reason=reason, detail=str(path))
        self.model = new
        log.warning(
            "model switch (%s): %s (%s) -> %s (%s) from %s; images already in flight finish "
            "with the old model",
            reason,
            old.metadata.name,
            old.model_hash[:12],
            new.metadata.name,
            new.model_hash[:12],
            path,
        )
        assert self._read_db is not None
        try:
            gap = store.count_unscored(
                self._read_db, new.model_hash, instrument=self.config.instrument_name
            )
        except StemwatchError:
            return
        if gap:
            log.info(
                "%d recorded image(s) have no score from the new model; `stemwatch reanalyse "
                "%s --model %s --instrument %s` fills its series over them (it may run beside "
                "the daemon)",
                gap,
                self.config.database,
                path,
                self.config.instrument_name,
            )

    # -- scans and the folder ------------------------------------------------------------

    def _rescan(self, now: float) -> None:
        self._rescan_due = now + self.config.watch.rescan_interval_s
        if _identity(self.folder) is None:
            return
        t0 = time.perf_counter()
        wall = time.time()
        queued = 0
        for path, stat, mtime_s in scan_folder(
            self.folder, self.accept, recursive=self.config.watch.recursive
        ):
            if path in self.in_flight or path in self.tracker:
                continue
            if self._known(path, stat, now):
                continue
            quiet_since = now - max(0.0, wall - mtime_s)
            self.tracker.hint(path, now, stat, quiet_since=quiet_since)
            queued += 1
        if queued:
            log.info(
                "scan of %s: %d image(s) without a record queued (%.2f s)",
                printable(self.folder),
                queued,
                time.perf_counter() - t0,
            )

    def _arm_observer(self) -> None:
        watch = self.config.watch
        self.watching.clear()
        stop_observer(self._observer)
        self._observer = None
        try:
            self._observer = start_observer(
                self.folder,
                self.inbox,
                polling=watch.polling,
                polling_interval_s=watch.polling_interval_s,
                recursive=watch.recursive,
            )
        except OSError as exc:
            log.error(
                "%s: cannot watch the folder (%s); relying on rescans", printable(self.folder), exc
            )
            return
        self.watching.set()

    def _observer_healthy(self) -> bool:
        obs = self._observer
        if obs is None or not obs.is_alive():
            return False
        return all(e.is_alive() for e in getattr(obs, "emitters", ()))

    def _check_folder(self, now: float) -> None:
        ident = _identity(self.folder)
        if ident is None:
            if self._folder_id is not None:
                log.warning(
                    "%s: watched folder disappeared; waiting for it to come back",
                    printable(self.folder),
                )
                self.watching.clear()
                stop_observer(self._observer)
                self._observer = None
            self._folder_id = None
            return
        if ident != self._folder_id:
            if self._folder_id is None:
                log.warning(
                    "%s: watched folder is there; arming and scanning", printable(self.folder)
                )
            else:
                log.warning(
                    "%s: watched folder was replaced; re-arming and rescanning",
                    printable(self.folder),
                )
            self._folder_id = ident
            if not self.once:
                self._arm_observer()
            self._rescan(now)
            return
        if not self.once and not self._observer_healthy():
            log.warning("%s: observer stopped; re-arming and rescanning", printable(self.folder))
            self._arm_observer()
            self._rescan(now)

    # -- shutdown ------------------------------------------------------------------------

    def _shutdown(self) -> None:
        self.supervisor.stopping.set()
        self.watching.clear()
        stop_observer(self._observer)
        self._observer = None
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join(10.0)
        if self.pipeline is not None:
            # hand over what is already stable so nothing stable is left half-done
            deadline = time.monotonic() + 10.0
            while self.pending and time.monotonic() < deadline:
                if not self.pipeline.try_submit(self.pending[0]):
                    time.sleep(0.01)
                    continue
                self.pending.popleft()
            self.pipeline.close()
            self.pipeline = None
            self._drain_inbox(time.monotonic())
        if self.heartbeat is not None:
            state = "stopped" if self.supervisor.failure is None else "crashed"
            if not self.heartbeat.beat(state):
                log.warning("database: the final heartbeat could not be written")
        for db in (self._db, self._read_db, self._lookup_db, self._alert_db, self._beat_db):
            if db is not None:
                db.close()
        self._db = self._read_db = self._lookup_db = self._alert_db = self._beat_db = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        for done in self._syncs:  # nobody waits forever on a stopped daemon
            done.set()
        self._syncs.clear()
        s = self.counts.snapshot()
        log.info(
            "stopped: %d done, %d failed, %d skipped, %d duplicate, %d moved, %d gone, %d retried",
            s.done,
            s.failed,
            s.ignored,
            s.duplicates,
            s.moved,
            s.gone,
            s.retries,
        )
