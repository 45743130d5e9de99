"""Alerts through apprise to a real HTTP server on loopback (the stand-in chat service)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from webhook import Hook

from monitor.alerts import Alerter, AlertsConfig, all_channels, send_test
from stemwatch import store
from stemwatch.cli import main


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"json://127.0.0.1:{port}/"  # nothing listens there any more


def event(well: str = "B03", episode: int = 0) -> store.OnsetRecord:
    return store.OnsetRecord(
        id=1,
        plate="P1",
        well=well,
        episode=episode,
        onset_time_s=36 * 3600.0,
        onset_timepoint=6,
        detected_time_s=48 * 3600.0,
        detected_timepoint=8,
        probability=0.83,
        detected_at=0.0,
        time_basis="elapsed",
    )


@pytest.fixture
def conn(tmp_path: Path) -> store.Database:
    return store.open_db(tmp_path / "s.db")


def test_onset_alert_reaches_the_webhook_once_per_episode(
    conn: store.Database, hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    alerter = Alerter(AlertsConfig(channels={"lab": hook.url}), conn)
    alert = alerter.onset(event(), now=1000.0)
    assert alert is not None and alert.channel_results == {"lab": "sent"}
    (payload,) = hook.payloads
    assert payload["title"] == "stemwatch: onset P1 B03"
    assert "plate P1 well B03" in payload["message"] and "36.0 h" in payload["message"]
    assert "Differentiation onset in plate P1 well B03" in caplog.text  # the log, always
    assert "episode" not in payload["message"]  # issue 13, item 7: words for people

    assert alerter.onset(event(), now=1001.0) is None  # same episode
    assert len(hook.payloads) == 1
    again = alerter.onset(event(episode=1), now=1002.0)  # after a reset
    assert again is not None and "again, after a reset" in again.message
    assert len(hook.payloads) == 2
    stored = store.list_alerts(conn)
    assert [(a.kind, a.well, a.channel_results) for a in stored] == [
        ("onset", "B03", {"lab": "sent"}),
        ("onset", "B03", {"lab": "sent"}),
    ]


def test_rate_limit_holds_back_then_summarises_never_loses(
    conn: store.Database, hook: Hook
) -> None:
    alerter = Alerter(AlertsConfig(channels={"lab": hook.url}, rate_limit_per_hour=2), conn)
    for i, well in enumerate(["A01", "A02", "A03", "A04"]):
        alerter.onset(event(well), now=1000.0 + i)
    assert len(hook.payloads) == 2
    alerts = store.list_alerts(conn)
    assert len(alerts) == 4  # every alert is in the database
    assert sorted(a.channel_results["lab"] for a in alerts) == [
        "rate-limited",
        "rate-limited",
        "sent",
        "sent",
    ]
    # nothing to flush while the hour is still full
    assert alerter.flush(now=2000.0) == []
    # an hour later the held-back alerts go out as one summary
    (result,) = alerter.flush(now=1000.0 + 3601)
    assert result.ok
    assert len(hook.payloads) == 3
    summary = hook.payloads[-1]["message"]
    assert "2 alert(s) were held back" in summary
    assert "well A03" in summary and "well A04" in summary
    assert alerter.flush(now=1000.0 + 3700) == []  # summarised once


def test_held_back_alerts_ride_along_with_the_next_message(
    conn: store.Database, hook: Hook
) -> None:
    alerter = Alerter(AlertsConfig(channels={"lab": hook.url}, rate_limit_per_hour=1), conn)
    alerter.onset(event("A01"), now=0.0)
    alerter.onset(event("A02"), now=10.0)  # held back
    alerter.onset(event("A03"), now=4000.0)  # new hour: sent, with A02 summarised
    assert len(hook.payloads) == 2
    assert "well A03" in hook.payloads[1]["message"]
    assert "Held back by the rate limit (1)" in hook.payloads[1]["message"]
    assert "well A02" in hook.payloads[1]["message"]


def test_unnamed_urls_are_channels_too(conn: store.Database, hook: Hook) -> None:
    cfg = AlertsConfig(channels={"lab": hook.url}, urls=[hook.url, "mailto://u:p@example.org"])
    assert list(all_channels(cfg)) == ["lab", "json#1", "mailto#2"]
    alert = Alerter(AlertsConfig(urls=[hook.url]), conn).onset(event(), now=1.0)
    assert alert is not None and alert.channel_results == {"json#1": "sent"}
    assert len(hook.payloads) == 1


def test_failing_channel_is_recorded_and_others_still_get_it(
    conn: store.Database, hook: Hook
) -> None:
    cfg = AlertsConfig(channels={"dead": closed_port_url(), "lab": hook.url, "bad": "nope://x"})
    alert = Alerter(cfg, conn).onset(event(), now=5.0)
    assert alert is not None
    assert alert.channel_results["lab"] == "sent"
    assert alert.channel_results["dead"].startswith("failed")
    assert alert.channel_results["bad"] == "failed: not a valid apprise URL"
    assert len(hook.payloads) == 1
    (stored,) = store.list_alerts(conn)
    assert stored.channel_results == alert.channel_results


def add_image(conn: store.Database, name: str, tp: int, *, at: float, failed: bool = False) -> None:
    from stemwatch.core.platemeta import ImageLocation

    location = ImageLocation("P1", "A01", 0, tp, tp * 600.0, "test")
    version = store.FileVersion(name, 1, tp)
    if failed:
        store.record_failure(
            conn, version, reason="truncated", attempts=3, location=location, now=at
        )
    else:
        store.record_result(conn, version, location, store.Prediction("m", 0.1), now=at)


def test_expected_interval_is_per_field_not_across_a_scan(conn: store.Database) -> None:
    from stemwatch.core.platemeta import ImageLocation

    # every 2 h, a scan of 12 wells x 2 fields taking 30 s per image (12 minutes in all)
    for tp in range(3):
        for i in range(24):
            well, field = f"A{i // 2 + 1:02d}", i % 2
            t = tp * 7200.0 + 30.0 * i
            store.record_result(
                conn,
                store.FileVersion(f"/i/{well}_{field}_{tp}.tif", 1, 1),
                ImageLocation("P1", well, field, tp, t, "test"),
                store.Prediction("m", 0.1),
                now=t,
            )
    assert Alerter(AlertsConfig(), conn).expected_interval_s() == 7200.0
    assert Alerter(AlertsConfig(expected_interval_s=60), conn).expected_interval_s() == 60


def test_stall_alert_once_per_episode(conn: store.Database, hook: Hook) -> None:
    alerter = Alerter(AlertsConfig(channels={"lab": hook.url}, stall_factor=3.0), conn)
    for tp in range(4):  # one image every 10 min of experiment time
        add_image(conn, f"/i/{tp}.tif", tp, at=1000.0 + 600 * tp)
    assert alerter.expected_interval_s() == 600.0
    last = 1000.0 + 600 * 3
    assert alerter.instrument_checks(now=last + 1700) == []  # < 3 intervals
    (stall,) = alerter.instrument_checks(now=last + 1900)
    assert stall.kind == "stall" and "stalled" in stall.message
    assert alerter.instrument_checks(now=last + 5000) == []  # same episode
    add_image(conn, "/i/4.tif", 4, at=last + 6000)  # images flow again: episode ends
    assert alerter.instrument_checks(now=last + 6100) == []
    (again,) = alerter.instrument_checks(now=last + 6000 + 1900)
    assert again.kind == "stall"
    assert [p["title"] for p in hook.payloads] == ["stemwatch: stall"] * 2


def test_failures_piling_up(conn: store.Database) -> None:
    alerter = Alerter(AlertsConfig(max_failed_per_hour=2, expected_interval_s=1e6), conn)
    for i in range(3):
        add_image(conn, f"/i/bad{i}.tif", i, at=100.0 + i, failed=True)
    (alert,) = alerter.instrument_checks(now=200.0)
    assert alert.kind == "failures" and "3 images failed" in alert.message
    assert "/i/bad2.tif: truncated" in alert.message
    assert alerter.instrument_checks(now=300.0) == []
    assert alerter.instrument_checks(now=100.0 + 3700) == []  # older than an hour: cleared
    cond = store.alert_condition(conn, "failures")
    assert cond is not None and not cond.active


def test_failure_alert_has_hysteresis(conn: store.Database) -> None:
    alerter = Alerter(AlertsConfig(max_failed_per_hour=4, expected_interval_s=1e6), conn)
    for i in range(5):  # 5 failures at t = 0..4
        add_image(conn, f"/i/a{i}.tif", i, at=float(i), failed=True)
    assert [a.kind for a in alerter.instrument_checks(now=10.0)] == ["failures"]
    # t = 3602: two failures have left the hour (3 left): under the limit, not recovered
    assert alerter.instrument_checks(now=3602.0) == []
    for i in range(3):  # a3, a4 and these three: 5 in the hour again, same episode
        add_image(conn, f"/i/b{i}.tif", 10 + i, at=3602.1 + i / 10, failed=True)
    assert alerter.instrument_checks(now=3602.4) == []
    assert alerter.instrument_checks(now=3602.4 + 3601) == []  # none in the hour: recovered
    for i in range(5):
        add_image(conn, f"/i/c{i}.tif", 20 + i, at=8000.0 + i, failed=True)
    assert [a.kind for a in alerter.instrument_checks(now=8010.0)] == ["failures"]


def test_disk_nearly_full_names_the_folder(conn: store.Database, tmp_path: Path) -> None:
    watched = tmp_path / "microscope"
    watched.mkdir()
    cfg = AlertsConfig(min_free_percent=100.0, expected_interval_s=1e6)  # never enough free
    alerts = Alerter(cfg, conn, disk_paths=[watched]).instrument_checks(now=10.0)
    keys = sorted(a.message.split(" is nearly full")[0] for a in alerts)
    assert keys == sorted([f"Disk of {tmp_path}", f"Disk of {watched}"])  # watched + db folder
    assert all(a.kind == "disk" for a in alerts)
    assert Alerter(cfg, conn, disk_paths=[watched]).instrument_checks(now=20.0) == []
    roomy = AlertsConfig(min_free_percent=0.0, expected_interval_s=1e6)
    assert Alerter(roomy, conn, disk_paths=[watched]).instrument_checks(now=30.0) == []


def test_send_test_and_alert_test_command(
    hook: Hook, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (ok,) = send_test(AlertsConfig(channels={"lab": hook.url}))
    assert ok.ok and "test" in hook.payloads[0]["title"]

    good = tmp_path / "good.yaml"
    good.write_text(f"alerts:\n  channels:\n    lab: '{hook.url}'\n")
    assert main(["alert-test", "--config", str(good)]) == 0
    assert "lab  OK" in capsys.readouterr().out
    assert len(hook.payloads) == 2

    mixed = tmp_path / "mixed.yaml"
    mixed.write_text(
        f"alerts:\n  channels:\n    lab: '{hook.url}'\n    dead: '{closed_port_url()}'\n"
    )
    assert main(["alert-test", "--config", str(mixed)]) == 1
    out = capsys.readouterr().out
    assert "dead  FAIL" in out and "1 of 2 channel(s) failed: dead" in out

    empty = tmp_path / "empty.yaml"
    empty.write_text("alerts: {}\n")
    assert main(["alert-test", "--config", str(empty)]) == 2
    assert "alerts.channels and alerts.urls are empty" in capsys.readouterr().err


def test_bulk_copy_mtimes_never_make_a_stall_interval(conn: store.Database, hook: Hook) -> None:
    """Issue 11 #7: a stall alert fired a minute after a bulk copy ("14240 x the expected
    interval of 0 min"): the interval came from mtimes milliseconds apart."""
    from stemwatch.core.platemeta import ImageLocation

    for i in range(40):  # one field, 40 time points copied within 0.4 s
        t = 1_700_000_000.0 + 0.01 * i
        store.record_result(
            conn,
            store.FileVersion(f"/i/copy_{i}.tif", 1, i),
            ImageLocation("P1", "A01", 1, None, t, "preset:x+mtime", time_basis="mtime"),
            store.Prediction("m", 0.1),
            now=t,
        )
    alerter = Alerter(AlertsConfig(channels={"lab": hook.url}), conn)
    assert alerter.expected_interval_s() is None
    assert alerter.instrument_checks(now=1_700_000_000.0 + 120) == []
    assert hook.payloads == []


def test_second_scale_gaps_are_not_a_time_lapse_interval(conn: store.Database) -> None:
    from stemwatch.core.platemeta import ImageLocation

    for i in range(10):  # acquisition times, but a z-stack 2 s apart: not an interval
        t = 1000.0 + 2.0 * i
        store.record_result(
            conn,
            store.FileVersion(f"/i/z_{i}.tif", 1, i),
            ImageLocation("P1", "A01", 1, None, t, "ome", time_basis="elapsed"),
            store.Prediction("m", 0.1),
            now=t,
        )
    assert Alerter(AlertsConfig(), conn).expected_interval_s() is None


def test_alerts_are_delivered_when_the_database_cannot_record_them(
    tmp_path: Path, hook: Hook
) -> None:
    """Issue 11 #4: with the database's disk full nothing was said about the full disk."""
    db = store.open_db(tmp_path / "s.db")
    try:
        db.execute("PRAGMA query_only = ON")  # every write fails, as on a full disk
        alerter = Alerter(
            AlertsConfig(channels={"lab": hook.url}, min_free_percent=100.0), db,
            disk_paths=[tmp_path],
        )  # fmt: skip
        alerter.instrument_checks(now=1000.0)
        assert [p["title"] for p in hook.payloads] == ["stemwatch: disk"]
        alerter.instrument_checks(now=1060.0)  # the same episode: not again
        assert len(hook.payloads) == 1
    finally:
        db.close()


def test_missing_watched_folder_alerts_after_a_while(
    conn: store.Database, hook: Hook, tmp_path: Path
) -> None:
    share = tmp_path / "share"
    alerter = Alerter(
        AlertsConfig(channels={"lab": hook.url}, folder_missing_alert_s=300),
        conn,
        watched_folder=share,
    )
    assert alerter.instrument_checks(now=1000.0) == []  # missing, but not for long
    (alert,) = alerter.instrument_checks(now=1301.0)
    assert alert.kind == "folder" and str(share) in alert.message
    share.mkdir()
    assert alerter.instrument_checks(now=1400.0) == []  # back: the episode ends
    assert [p["title"] for p in hook.payloads] == ["stemwatch: folder"]
