"""`stemwatch status` against a real database written through the store's API."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitor.alerts import Alerter, AlertsConfig
from monitor.onset import OnsetConfig, update_well
from stemwatch import store
from stemwatch.cli import main
from stemwatch.core.platemeta import ImageLocation


def build_db(db: Path, *, beat_at: float, interval_s: float = 10.0) -> None:
    conn = store.open_db(db)
    model = "0123456789abcdef"
    store.register_model(
        conn,
        model_hash=model,
        name="stemwatch-default",
        metadata_json="{}",
        provider="CPUExecutionProvider",
    )
    cfg = OnsetConfig(k=2, alpha=1.0)
    for tp, p in enumerate([0.1, 0.2, 0.8, 0.9]):
        loc = ImageLocation("PLATE7", "D04", 0, tp, tp * 6 * 3600.0, "test", time_basis="elapsed")
        store.record_result(
            conn,
            store.FileVersion(f"/scope/D04_t{tp}.tif", 1, tp),
            loc,
            store.Prediction(model, p, tile_mean=p, tile_sd=0.1, n_tiles=4),
        )
        event = update_well(conn, "PLATE7", "D04", cfg, model_hash=model)
        if event is not None:
            Alerter(AlertsConfig(), conn).onset(event)
    store.record_result(
        conn,
        store.FileVersion("/scope/D05_t0.tif", 1, 0),
        ImageLocation("PLATE7", "D05", 0, 0, 0.0, "test", time_basis="elapsed"),
        store.Prediction(model, 0.1),
    )
    # a plate whose times are acquisition dates (small ones: the basis decides, not the size)
    store.record_result(
        conn,
        store.FileVersion("/scope/old.tif", 1, 0),
        ImageLocation("DATED", "A01", 0, 0, 5e7, "test", time_basis="epoch"),
        store.Prediction(model, 0.1),
    )
    store.record_failure(
        conn, store.FileVersion("/scope/broken.tif", 7, 0), reason="truncated TIFF", attempts=5
    )
    store.beat(
        conn, state="running", detail="1 queued", queued=1, interval_s=interval_s, now=beat_at
    )
    conn.close()


def test_status_prints_what_the_daemon_is_doing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    build_db(db, beat_at=time.time())
    assert main(["status", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "daemon:   alive; state running - 1 queued" in out
    assert "stemwatch-default (0123456789ab) on CPUExecutionProvider" in out
    assert "images:   6 done, 1 failed, 1 queued in the daemon" in out
    assert "PLATE7: 2 wells" in out and "1 wells with onset" in out
    assert "up to 18.0 h" in out
    assert "DATED: 1 wells, 1 images, up to 1971-" in out  # the stored basis: a date
    assert "failed: truncated TIFF  /scope/broken.tif" in out
    assert "PLATE7 D04: began ~12.0 h, detected at 18.0 h" in out
    assert "unacknowledged alerts (1):" in out and "[onset]" in out


def test_status_judges_liveness_by_the_daemons_own_heartbeat_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bug (issue 12): status used its own config's interval, the dashboard 120 s."""
    slow = tmp_path / "slow.db"  # beats every minute: 100 s of silence is normal
    build_db(slow, beat_at=time.time() - 100, interval_s=60.0)
    assert main(["status", "--db", str(slow)]) == 0
    assert "daemon:   alive; state running" in capsys.readouterr().out
    fast = tmp_path / "fast.db"  # beats every 10 s: 60 s of silence means it is gone
    build_db(fast, beat_at=time.time() - 60, interval_s=10.0)
    assert main(["status", "--db", str(fast)]) == 0
    out = capsys.readouterr().out
    assert "NOT RUNNING (stale heartbeat" in out
    assert "queued in the daemon" not in out  # a dead daemon's queue is not news


def test_status_flags_a_stale_heartbeat(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    build_db(db, beat_at=time.time() - 3600)
    assert main(["status", "--db", str(db), "--stale-after", "60"]) == 0
    out = capsys.readouterr().out
    assert "NOT RUNNING (stale heartbeat; last state running)" in out and "60 min ago" in out


def test_status_reads_the_database_path_from_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "from-config.db"
    build_db(db, beat_at=time.time())
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(f"database: '{db}'\n")
    assert main(["status", "--config", str(cfg)]) == 0
    assert f"database: {db}" in capsys.readouterr().out


def test_status_of_a_missing_database_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.db"
    assert main(["status", "--db", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0] and "not found" in err[0]


def test_status_of_a_fresh_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "fresh.db"
    store.open_db(db).close()
    assert main(["status", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "never ran on this database" in out and "none registered yet" in out


def test_status_lists_skipped_files_and_when_a_failure_is_read_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    build_db(db, beat_at=time.time())
    conn = store.open_db(db)
    for name in ("a_mask.tif", "b_mask.tif"):
        store.record_skipped(
            conn, store.FileVersion(f"/scope/{name}", 1, 1), kind="ignored",
            reason="not an image of cells: the name says 'mask'",
        )  # fmt: skip
    store.record_failure(
        conn,
        store.FileVersion("/scope/locked.tif", 1, 1),
        reason="permission denied; make the file readable for this user",
        attempts=5,
        retry_at=time.time() + 600,
    )
    conn.close()
    assert main(["status", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "skipped:  2 file(s) not analysed on purpose" in out
    assert "2 ignored: not an image of cells: the name says 'mask'" in out
    assert "failed: permission denied" in out and "(read again in 10 min)" in out
