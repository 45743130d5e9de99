"""Alert delivery runs beside the database writer: a slow chat service holds nothing up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from monitor_helpers import make_config, running_daemon
from onnx_models import build_classifier
from webhook import Hook

from monitor.alert_worker import AlertWorker
from monitor.alerts import Alerter, AlertsConfig
from stemwatch import store
from stemwatch.store.connection import transaction


@pytest.fixture
def slow_hook() -> Iterator[Hook]:
    h = Hook(gate=threading.Event())
    yield h
    h.close()


def onset_event(well: str) -> store.OnsetRecord:
    return store.OnsetRecord(
        id=0,
        plate="P1",
        well=well,
        episode=0,
        onset_time_s=3600.0,
        onset_timepoint=1,
        detected_time_s=7200.0,
        detected_timepoint=2,
        probability=0.9,
        detected_at=7200.0,
    )


def test_onset_returns_at_once_and_close_delivers_everything(
    tmp_path: Path, slow_hook: Hook
) -> None:
    conn = store.open_db(tmp_path / "db.sqlite")
    alerter = Alerter(AlertsConfig(channels={"lab": slow_hook.url}), conn)
    worker = AlertWorker(alerter)
    worker.start()
    try:
        worker.onset(onset_event("A01"))
        worker.onset(onset_event("A02"))
        # Had onset() delivered in this thread, we would still be waiting on the hook, which
        # answers only now; apprise would have timed out and recorded a failure instead.
        assert slow_hook.gate is not None
        slow_hook.gate.set()
    finally:
        worker.close(timeout_s=30)
    alerts = store.list_alerts(conn, limit=10)
    assert sorted(a.well for a in alerts) == ["A01", "A02"]
    assert all(a.channel_results == {"lab": "sent"} for a in alerts), alerts
    assert len(slow_hook.payloads) == 2
    conn.close()


def test_checks_while_one_round_waits_are_merged(tmp_path: Path) -> None:
    conn = store.open_db(tmp_path / "db.sqlite")
    calls: list[float] = []
    gate = threading.Event()

    class CountingAlerter(Alerter):
        def instrument_checks(self, now: float | None = None) -> list[store.AlertRecord]:
            gate.wait(10)
            calls.append(now or 0.0)
            return []

    worker = AlertWorker(CountingAlerter(AlertsConfig(), conn))
    for _ in range(5):  # queued before the thread runs: one round covers them all
        worker.instrument_checks()
    worker.start()
    gate.set()
    worker.close(timeout_s=10)
    assert len(calls) == 1
    conn.close()


def test_a_failing_alerter_does_not_stop_the_worker(tmp_path: Path) -> None:
    conn = store.open_db(tmp_path / "db.sqlite")
    seen: list[str] = []

    class FlakyAlerter(Alerter):
        def onset(self, event: store.OnsetRecord, *, now: float | None = None) -> None:  # type: ignore[override]
            seen.append(event.well)
            if event.well == "A01":
                raise store.StoreBusyError("database is locked")

    worker = AlertWorker(FlakyAlerter(AlertsConfig(), conn))
    worker.start()
    worker.onset(onset_event("A01"))
    worker.onset(onset_event("A02"))
    worker.close(timeout_s=10)
    assert seen == ["A01", "A02"]
    conn.close()


def test_the_daemons_alert_thread_sees_only_what_the_writer_committed(tmp_path: Path) -> None:
    """Bug (issue 12): the alert thread read through the writer's connection, so it could
    count rows of a transaction still in progress; now it has a connection of its own."""
    cfg = make_config(tmp_path, build_classifier(tmp_path / "m.onnx", tile_size=32))
    with running_daemon(cfg) as d:
        pipe = d.daemon.pipeline
        assert pipe is not None and pipe.alerter is not None
        alert_db = pipe.alerter.alerter.db
        failed = store.FileVersion("/scope/bad.tif", 1, 1)
        with pytest.raises(RuntimeError), transaction(pipe.db):
            store.record_failure(pipe.db, failed, reason="truncated", attempts=3)
            assert store.recent_failures(pipe.db, since=0.0).count == 1  # the writer sees it
            assert store.recent_failures(alert_db, since=0.0).count == 0  # the alerts do not
            raise RuntimeError("roll back")
