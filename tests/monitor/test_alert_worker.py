"""Alert delivery runs beside the database writer: a slow chat service holds nothing up."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitor import store
from monitor.alert_worker import AlertWorker
from monitor.alerts import Alerter, AlertsConfig
from monitor.onset import OnsetEvent


class SlowHook:
    """A webhook on 127.0.0.1 that answers only once ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.payloads: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                hook.release.wait(20)
                hook.payloads.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def slow_hook() -> Iterator[SlowHook]:
    h = SlowHook()
    yield h
    h.close()


def onset_event(well: str) -> OnsetEvent:
    return OnsetEvent(
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
    tmp_path: Path, slow_hook: SlowHook
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
        slow_hook.release.set()
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
        def onset(self, event: OnsetEvent, *, now: float | None = None) -> None:  # type: ignore[override]
            seen.append(event.well)
            if event.well == "A01":
                raise sqlite3.OperationalError("database is locked")

    worker = AlertWorker(FlakyAlerter(AlertsConfig(), conn))
    worker.start()
    worker.onset(onset_event("A01"))
    worker.onset(onset_event("A02"))
    worker.close(timeout_s=10)
    assert seen == ["A01", "A02"]
    conn.close()
