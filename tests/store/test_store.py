"""The SQLite store: schema migrations, WAL, write API, read API, locked and read-only files."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from stemwatch import store
from stemwatch.core.errors import StemwatchError
from stemwatch.core.platemeta import ImageLocation


def loc(well: str = "A01", field: int = 0, tp: int = 0, plate: str = "P1") -> ImageLocation:
    return ImageLocation(plate, well, field, tp, tp * 3600.0, "test")


def add_scored(
    conn: sqlite3.Connection, path: str, p: float, location: ImageLocation, model: str = "m1"
) -> int:
    iid = store.register_image(
        conn,
        path=path,
        size=100,
        mtime_ns=1,
        content_hash=f"h-{path}",
        location=location,
        status="queued",
    )
    store.record_prediction(
        conn,
        iid,
        model_hash=model,
        probability=p,
        tile_mean=p,
        tile_sd=0.1,
        n_tiles=9,
        cam_png=b"\x89PNG fake",
    )
    return iid


def test_new_database_is_wal_with_current_schema(tmp_path: Path) -> None:
    conn = store.open_db(tmp_path / "s.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.schema_version(conn) == store.SCHEMA_VERSION == len(store.MIGRATIONS)
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == int(store.BUSY_TIMEOUT_S * 1000)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"images", "predictions", "well_series", "onsets", "alerts", "models"} <= tables
    assert {"heartbeat"} <= tables
    # reopening is idempotent
    conn.close()
    assert store.schema_version(store.open_db(tmp_path / "s.db")) == store.SCHEMA_VERSION


def test_v1_database_migrates_forward_keeping_rows(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    raw = sqlite3.connect(db)
    raw.executescript(store.MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
    raw.execute(
        "INSERT INTO onsets (plate, well, episode, onset_time_s, detected_at) "
        "VALUES ('P1', 'B02', 0, 7200.0, 1.0)"
    )
    raw.commit()
    raw.close()

    conn = store.open_db(db)
    assert store.schema_version(conn) == store.SCHEMA_VERSION >= 2
    (onset,) = store.list_onsets(conn)
    assert (onset.plate, onset.well, onset.onset_time_s) == ("P1", "B02", 7200.0)
    assert onset.detected_timepoint is None  # column added by v2
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "images_created" in indexes


def test_database_from_newer_stemwatch_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    store.open_db(db).execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    for readonly in (False, True):
        with pytest.raises(store.StoreError, match="newer than this stemwatch") as exc:
            store.open_db(db, readonly=readonly)
        assert str(db) in str(exc.value)


def test_readonly_open_reads_and_refuses_writes(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    conn = store.open_db(db)
    add_scored(conn, "/img/a.tif", 0.3, loc())
    ro = store.open_db(db, readonly=True)
    assert store.counts(ro).done == 1
    with pytest.raises(store.StoreError, match="read-only") as exc:
        store.beat(ro, state="running")
    assert str(db) in str(exc.value)
    assert isinstance(exc.value, StemwatchError)


def test_readonly_open_of_a_path_with_uri_characters(tmp_path: Path) -> None:
    folder = tmp_path / "run #3? 50% done"
    folder.mkdir()
    store.open_db(folder / "s.db").close()
    ro = store.open_db(folder / "s.db", readonly=True)
    assert store.db_path_of(ro) == str((folder / "s.db").resolve())


def test_readonly_open_of_missing_or_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(store.StoreError, match="not found"):
        store.open_db(tmp_path / "nope.db", readonly=True)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(store.StoreError, match="not a stemwatch database"):
        store.open_db(other, readonly=True)
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE images (x)").connection.commit()
    with pytest.raises(store.StoreError, match="another program's database"):
        store.open_db(foreign)
    # ...and left untouched (not switched to WAL, no stemwatch tables)
    raw = sqlite3.connect(foreign)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert raw.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 1
    raw.close()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(store.StoreError, match=r"junk\.db"):
        store.open_db(junk)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores modes")
def test_readonly_file_gives_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store.open_db(db).close()
    db.chmod(0o444)
    with pytest.raises(store.StoreError, match="read-only") as exc:
        store.open_db(db)
    assert str(db) in str(exc.value)


def test_missing_folder_gives_clear_error(tmp_path: Path) -> None:
    with pytest.raises(store.StoreError, match="does not exist"):
        store.open_db(tmp_path / "no" / "such" / "s.db")


def test_write_waits_for_a_lock_held_by_another_process(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    conn = store.open_db(db, busy_timeout_s=0.1)
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    t0 = time.monotonic()
    store.beat(conn, state="running", detail="after the lock")  # busy timeout, then retries
    assert time.monotonic() - t0 >= 0.4
    release.join()
    hb = store.last_heartbeat(conn)
    assert hb is not None and hb.detail == "after the lock"
    other.close()


def test_lock_that_never_clears_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "LOCK_RETRIES", 1)
    db = tmp_path / "s.db"
    conn = store.open_db(db, busy_timeout_s=0.05)
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(store.StoreError, match="locked") as exc:
            store.beat(conn, state="running")
        assert str(db) in str(exc.value)
    finally:
        other.execute("ROLLBACK")


def test_image_versions_are_found_updated_and_superseded(tmp_path: Path) -> None:
    conn = store.open_db(tmp_path / "s.db")
    kw: dict[str, Any] = {"path": "/img/a.tif", "size": 10, "mtime_ns": 5, "content_hash": "abc"}
    first = store.register_image(conn, **kw, location=loc(), status="queued")
    assert store.find_image(conn, "/img/a.tif", 10, 5, "abc") == first
    assert store.find_image(conn, "/img/a.tif", 10, 6, "other") is None
    assert store.find_image(conn, "/img/b.tif", 10, 5, "abc") is None
    # same version again: same record, new status
    assert store.register_image(conn, **kw, location=loc(), status="done") == first
    # without a hash, size + mtime decide
    assert store.find_image(conn, "/img/a.tif", 10, 5, None) == first

    rewritten = store.register_image(
        conn,
        path="/img/a.tif",
        size=12,
        mtime_ns=9,
        content_hash="def",
        location=loc(),
        status="queued",
    )
    assert rewritten != first
    assert store.find_image(conn, "/img/a.tif", 10, 5, "abc") is None  # superseded
    history = store.images_for_well(conn, "P1", "A01", include_superseded=True)
    assert [(i.id, i.superseded_by) for i in history] == [(first, rewritten), (rewritten, None)]
    assert [i.id for i in store.images_for_well(conn, "P1", "A01")] == [rewritten]
    c = store.counts(conn)
    assert (c.queued, c.done, c.failed, c.superseded) == (1, 0, 0, 1)


def test_register_image_rejects_unknown_status(tmp_path: Path) -> None:
    conn = store.open_db(tmp_path / "s.db")
    with pytest.raises(ValueError, match="finished"):
        store.register_image(
            conn,
            path="/a",
            size=1,
            mtime_ns=1,
            content_hash=None,
            location=None,
            status="finished",
        )


def test_predictions_failures_and_reads(tmp_path: Path) -> None:
    conn = store.open_db(tmp_path / "s.db")
    a = add_scored(conn, "/img/a_t0.tif", 0.2, loc(tp=0))
    add_scored(conn, "/img/a_t1.tif", 0.7, loc(tp=1))
    add_scored(conn, "/img/b_t0.tif", 0.1, loc(well="B01"))
    # a newer model rescoring an image: the latest prediction is the one read
    store.record_prediction(
        conn,
        a,
        model_hash="m2",
        probability=0.25,
        tile_mean=0.25,
        tile_sd=0.0,
        n_tiles=9,
        cam_png=None,
    )
    failed = store.record_failure(
        conn, path="/img/bad.tif", size=3, mtime_ns=1, reason="truncated TIFF", attempts=5
    )
    assert (
        store.record_failure(
            conn, path="/img/bad.tif", size=3, mtime_ns=1, reason="still truncated", attempts=6
        )
        == failed
    )

    c = store.counts(conn)
    assert (c.done, c.failed, c.queued) == (3, 1, 0)
    imgs = store.images_for_well(conn, "P1", "A01")
    assert [(i.timepoint, i.probability, i.model_hash) for i in imgs] == [
        (0, 0.25, "m2"),
        (1, 0.7, "m1"),
    ]
    assert imgs[1].has_cam and not imgs[0].has_cam
    assert store.cam_png(conn, imgs[1].id) == b"\x89PNG fake"
    assert store.cam_png(conn, imgs[0].id) is None
    (plate,) = store.list_plates(conn)
    assert (plate.plate, plate.n_wells, plate.n_images) == ("P1", 2, 3)
    recent = store.recent_images(conn, limit=1)
    assert recent[0].path == "/img/bad.tif" and recent[0].error == "still truncated"
    assert recent[0].attempts == 6
    with pytest.raises(store.StoreError, match="no image with id 999"):
        store.record_prediction(
            conn,
            999,
            model_hash="m",
            probability=0.5,
            tile_mean=None,
            tile_sd=None,
            n_tiles=None,
            cam_png=None,
        )


def test_models_and_heartbeat(tmp_path: Path) -> None:
    conn = store.open_db(tmp_path / "s.db")
    assert store.current_model(conn) is None and store.last_heartbeat(conn) is None
    store.register_model(
        conn, model_hash="m1", name="a", metadata_json="{}", provider="CPU", now=10.0
    )
    store.register_model(
        conn, model_hash="m2", name="b", metadata_json="{}", provider="CPU", now=20.0
    )
    store.register_model(
        conn, model_hash="m1", name="a", metadata_json="{}", provider="CUDA", now=30.0
    )
    m = store.current_model(conn)
    assert m is not None and (m.model_hash, m.provider, m.first_seen) == ("m1", "CUDA", 10.0)
    assert [x.model_hash for x in store.list_models(conn)] == ["m1", "m2"]

    store.beat(conn, state="running", detail="3 queued", now=100.0)
    store.beat(conn, state="idle", now=200.0)
    hb = store.last_heartbeat(conn)
    assert hb is not None and (hb.state, hb.at, hb.pid) == ("idle", 200.0, os.getpid())
    assert hb.alive(stale_after_s=60, now=250.0) and not hb.alive(stale_after_s=60, now=261.0)
    assert conn.execute("SELECT count(*) FROM heartbeat").fetchone()[0] == 1


def test_acknowledge_alert(tmp_path: Path) -> None:
    conn = store.open_db(tmp_path / "s.db")
    conn.execute(
        "INSERT INTO alerts (kind, message, created_at, channel_results) "
        "VALUES ('onset', 'P1 A01', 1.0, '{\"x\": \"sent\"}')"
    )
    (alert,) = store.list_alerts(conn, unacknowledged_only=True)
    assert alert.channel_results == {"x": "sent"}
    store.acknowledge_alert(conn, alert.id, by="ana", now=5.0)
    assert store.list_alerts(conn, unacknowledged_only=True) == []
    (acked,) = store.list_alerts(conn)
    assert (acked.acknowledged_by, acked.acknowledged_at) == ("ana", 5.0)
    with pytest.raises(store.StoreError, match="no alert with id 42"):
        store.acknowledge_alert(conn, 42, by="ana")


def test_unwritable_file_message_names_file_even_as_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root bypasses file modes, so emulate what os.access reports to a normal user."""
    db = tmp_path / "s.db"
    store.open_db(db).close()
    real_access = os.access
    monkeypatch.setattr(
        store.os, "access", lambda p, mode: False if Path(p) == db else real_access(p, mode)
    )
    with pytest.raises(store.StoreError, match="read-only") as exc:
        store.open_db(db)
    assert str(db) in str(exc.value) and "chmod" in str(exc.value)


def test_threads_sharing_a_connection_write_in_turn(tmp_path: Path) -> None:
    conn = store.open_db(tmp_path / "s.db")
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for i in range(60):
                with store.transaction(conn):  # like the pipeline: image + prediction together
                    iid = store.register_image(
                        conn,
                        path=f"/{name}/{i}.tif",
                        size=1,
                        mtime_ns=i,
                        content_hash=None,
                        location=loc(well=name, tp=i),
                        status="queued",
                    )
                    store.record_prediction(
                        conn,
                        iid,
                        model_hash="m",
                        probability=0.5,
                        tile_mean=0.5,
                        tile_sd=0.0,
                        n_tiles=1,
                        cam_png=None,
                    )
                store.beat(conn, state="running", detail=f"{name} {i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in ("A01", "B01", "C01")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.counts(conn).done == 180
    assert not conn.in_transaction


def test_another_threads_write_does_not_join_a_transaction_that_rolls_back(
    tmp_path: Path,
) -> None:
    conn = store.open_db(tmp_path / "s.db")
    began = threading.Event()

    def beat_meanwhile() -> None:
        began.wait()
        store.beat(conn, state="running", detail="from the other thread")

    other = threading.Thread(target=beat_meanwhile)
    other.start()
    with pytest.raises(RuntimeError), store.transaction(conn):
        store.record_failure(conn, path="/x.tif", size=1, mtime_ns=1, reason="r", attempts=1)
        began.set()
        time.sleep(0.3)  # the other thread tries to write now
        raise RuntimeError("roll back")
    other.join()
    assert store.counts(conn).failed == 0  # rolled back
    hb = store.last_heartbeat(conn)
    assert hb is not None and hb.detail == "from the other thread"  # not rolled back with it
