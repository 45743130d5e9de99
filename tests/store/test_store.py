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
from stemwatch.store import connection
from stemwatch.store.schema import MIGRATIONS


def loc(
    well: str = "A01", field: int = 0, tp: int = 0, plate: str = "P1", basis: str = "elapsed"
) -> ImageLocation:
    return ImageLocation(plate, well, field, tp, tp * 3600.0, "test", time_basis=basis)  # type: ignore[arg-type]


def version(
    path: str, size: int = 100, mtime_ns: int = 1, h: str | None = None
) -> store.FileVersion:
    return store.FileVersion(path, size, mtime_ns, h)


def prediction(
    p: float, model: str = "m1", cam: bytes | None = b"\x89PNG fake"
) -> store.Prediction:
    return store.Prediction(model, p, tile_mean=p, tile_sd=0.1, n_tiles=9, cam_png=cam)


def add_scored(
    db: store.Database, path: str, p: float, location: ImageLocation, model: str = "m1"
) -> int:
    return store.record_result(db, version(path, h=f"h-{path}"), location, prediction(p, model))


def raw(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(db, isolation_level=None, check_same_thread=False)


# -- opening, schema, migrations ----------------------------------------------------------------


def test_new_database_is_wal_with_current_schema(tmp_path: Path) -> None:
    db = store.open_db(tmp_path / "s.db")
    db.close()
    r = raw(tmp_path / "s.db")
    assert r.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert r.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION == len(MIGRATIONS)
    tables = {t[0] for t in r.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"images", "predictions", "well_series", "onsets", "alerts", "models"} <= tables
    assert {"heartbeat"} <= tables
    r.close()
    store.open_db(tmp_path / "s.db").close()  # reopening is idempotent
    assert (
        raw(tmp_path / "s.db").execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    )


class RawDatabase:
    """A connection that bypasses the store, to build a database as an older stemwatch left
    it: a SQLite file or a PostgreSQL database (``?`` placeholders on both)."""

    def __init__(self, target: str) -> None:
        self.engine = store.parse_target(target).engine
        if self.engine == "sqlite":
            self.conn: Any = raw(Path(target))
        else:
            import psycopg

            self.conn = psycopg.connect(target, autocommit=True)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        if self.engine == "postgresql":
            from stemwatch.store.postgres_engine import to_postgres

            cur = self.conn.execute(to_postgres(sql), params) if params else self.conn.execute(sql)
            return list(cur.fetchall()) if cur.description else []
        return list(self.conn.execute(sql, params).fetchall())

    def version(self) -> int:
        if self.engine == "sqlite":
            return int(self.execute("PRAGMA user_version")[0][0])
        return int(self.execute("SELECT version FROM stemwatch_schema")[0][0])

    def indexes(self) -> set[str]:
        if self.engine == "sqlite":
            return {r[0] for r in self.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        return {r[0] for r in self.execute("SELECT indexname FROM pg_indexes")}

    def close(self) -> None:
        self.conn.close()


def old_database(target: str, version: int) -> RawDatabase:
    """A database as stemwatch ``version`` left it (its migrations only), on either engine."""
    r = RawDatabase(target)
    if r.engine == "sqlite":
        for i in range(version):
            r.conn.executescript(MIGRATIONS[i].sqlite)
        r.execute(f"PRAGMA user_version = {version}")
    else:
        r.execute("CREATE TABLE stemwatch_schema (version BIGINT NOT NULL)")
        for i in range(version):
            r.execute(MIGRATIONS[i].postgres)
        r.execute(f"INSERT INTO stemwatch_schema (version) VALUES ({version})")
    return r


@pytest.mark.parametrize("old", [1, 2, 3, 4])
def test_old_databases_migrate_forward_keeping_rows(target: str, tmp_path: Path, old: int) -> None:
    r = old_database(target, old)
    # v4 stamps every row with its instrument; before v4 rows get the heartbeat's host (none
    # here: '')
    who = "scope-pc" if old >= 4 else ""
    col, val = ("instrument, ", f"'{who}', ") if old >= 4 else ("", "")
    images = [  # path, plate, well, time_s, source (ids 1-4 in this order)
        ("/i/a_t0.tif", "P1", "B02", 7200.0, "ome"),
        ("/i/b.tif", "P2", "A01", 1.7e9, "name+mtime"),
        ("/i/c.tif", "P3", "A01", 1.7e9, "ome"),
        ("/i/d.tif", None, None, None, None),
    ]
    for p, plate, well, t, src in images:
        r.execute(
            f"INSERT INTO images ({col}path, plate, well, field, timepoint, time_s, "
            "location_source, status, created_at, updated_at) "
            f"VALUES ({val}?, ?, ?, 0, 0, ?, ?, 'done', 1.0, 1.0)",
            (p, plate, well, t, src),
        )
    r.execute(
        "INSERT INTO predictions (image_id, model_hash, probability, created_at) "
        "VALUES (1, 'old-model', 0.9, 1.0)"
    )
    keyed = "model_hash, " if old >= 3 else ""  # v3 keys series and onsets by model
    model = "'old-model', " if old >= 3 else ""
    r.execute(
        f"INSERT INTO well_series ({col}{keyed}plate, well, seq, timepoint, time_s, probability, "
        f"n_fields, n_tiles, updated_at) VALUES ({val}{model}'P1', 'B02', 0, 0, 7200.0, 0.9, 1, "
        "4, 1.0)"
    )
    if old >= 3:
        r.execute(
            f"INSERT INTO onsets ({col}model_hash, plate, well, episode, onset_time_s, "
            f"time_basis, detected_at) VALUES ({val}'old-model', 'P1', 'B02', 0, 7200.0, "
            "'elapsed', 1.0)"
        )
        r.execute(
            "UPDATE images SET time_basis = CASE WHEN location_source LIKE '%mtime%' "
            "THEN 'mtime' WHEN time_s >= 1e8 THEN 'epoch' WHEN time_s IS NOT NULL "
            "THEN 'elapsed' END"
        )
    else:
        r.execute(
            "INSERT INTO onsets (plate, well, episode, onset_time_s, detected_at) "
            "VALUES ('P1', 'B02', 0, 7200.0, 1.0)"
        )
    if old >= 4:
        r.execute(
            "INSERT INTO heartbeat (instrument, pid, host, state, at) "
            "VALUES ('scope-pc', 7, 'scope-pc', 'running', 1.0)"
        )
    else:
        r.execute("INSERT INTO heartbeat (id, pid, state, at) VALUES (1, 7, 'running', 1.0)")
    r.close()

    db = store.open_db(target)
    r = RawDatabase(target)
    assert r.version() == store.SCHEMA_VERSION
    (onset,) = store.list_onsets(db)
    assert (onset.plate, onset.well, onset.onset_time_s) == ("P1", "B02", 7200.0)
    assert (onset.model_hash, onset.time_basis, onset.instrument) == ("old-model", "elapsed", who)
    assert onset.detected_timepoint is None  # column added by v2
    (point,) = store.well_series(db, "P1", "B02")
    assert (point.model_hash, point.probability) == ("old-model", 0.9)
    bases = {p.plate: p.time_basis for p in store.list_plates(db)}
    assert bases == {"P1": "elapsed", "P2": "mtime", "P3": "epoch"}
    hb = store.last_heartbeat(db)
    assert hb is not None and hb.interval_s is None and hb.stale_after_s == 30.0
    assert hb.instrument == who
    assert {"images_created", "predictions_created", "heartbeat_log_at"} <= r.indexes()
    # v9: what every render of the dashboard's plate page asks (issue 13)
    assert {"images_plates", "images_quality", "predictions_out_of_domain"} <= r.indexes()
    r.close()
    # v5: no watched folder or heartbeat history known yet; unplaced images listed (no reason
    # recorded before v5)
    assert store.watched_folders(db) == []
    assert store.heartbeat_history(db, since=0.0) == []
    (unplaced,) = store.unplaced_images(db)
    assert unplaced.path == "/i/d.tif" and unplaced.unplaced_reason is None
    assert unplaced.instrument == who
    store.record_watched_folder(db, tmp_path)
    (folder,) = store.watched_folders(db)
    assert (folder.path, folder.instrument) == (str(tmp_path.resolve()), db.writer)
    db.close()


def test_database_from_newer_stemwatch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    store.open_db(path).close()
    raw(path).execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    for readonly in (False, True):
        with pytest.raises(store.StoreError, match="newer than this stemwatch") as exc:
            store.open_db(path, readonly=readonly)
        assert str(path) in str(exc.value)


def test_readonly_open_reads_and_refuses_writes(target: str) -> None:
    db = store.open_db(target)
    add_scored(db, "/img/a.tif", 0.3, loc())
    ro = store.open_db(target, readonly=True)
    assert store.counts(ro).done == 1
    with pytest.raises(store.StoreError, match="read-only") as exc:
        store.beat(ro, state="running")
    assert ro.source in str(exc.value)
    assert isinstance(exc.value, StemwatchError)
    assert store.counts(db).done == 1  # the writer is untouched


def test_readonly_open_of_a_path_with_uri_characters(tmp_path: Path) -> None:
    folder = tmp_path / "run #3? 50% done"
    folder.mkdir()
    store.open_db(folder / "s.db").close()
    with store.open_db(folder / "s.db", readonly=True) as ro:
        assert ro.source == str((folder / "s.db").resolve())
        assert store.counts(ro) == store.Counts()


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
    r = sqlite3.connect(foreign)
    assert r.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert r.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 1
    r.close()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(store.StoreError, match=r"junk\.db"):
        store.open_db(junk)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores modes")
def test_readonly_file_gives_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store.open_db(path).close()
    path.chmod(0o444)
    with pytest.raises(store.StoreError, match="read-only") as exc:
        store.open_db(path)
    assert str(path) in str(exc.value)


def test_unwritable_file_message_names_file_even_as_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root bypasses file modes, so emulate what os.access reports to a normal user."""
    path = tmp_path / "s.db"
    store.open_db(path).close()
    real_access = os.access
    monkeypatch.setattr(
        connection.os, "access", lambda p, mode: False if Path(p) == path else real_access(p, mode)
    )
    with pytest.raises(store.StoreError, match="read-only") as exc:
        store.open_db(path)
    assert str(path) in str(exc.value) and "chmod" in str(exc.value)


def test_missing_folder_gives_clear_error(tmp_path: Path) -> None:
    with pytest.raises(store.StoreError, match="does not exist"):
        store.open_db(tmp_path / "no" / "such" / "s.db")


# -- locks and threads ---------------------------------------------------------------------------


def test_write_waits_for_a_lock_held_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db = store.open_db(path, busy_timeout_s=0.1)
    other = raw(path)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    t0 = time.monotonic()
    store.beat(db, state="running", detail="after the lock")  # busy timeout, then retries
    assert time.monotonic() - t0 >= 0.4
    release.join()
    hb = store.last_heartbeat(db)
    assert hb is not None and hb.detail == "after the lock"
    other.close()


def test_lock_that_never_clears_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "LOCK_RETRIES", 1)
    path = tmp_path / "s.db"
    db = store.open_db(path, busy_timeout_s=0.05)
    other = raw(path)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(store.StoreBusyError, match="locked") as exc:
            store.beat(db, state="running")
        assert str(path) in str(exc.value)
    finally:
        other.execute("ROLLBACK")


def test_threads_sharing_a_connection_write_in_turn(target: str) -> None:
    db = store.open_db(target)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for i in range(60):
                store.record_result(
                    db, version(f"/{name}/{i}.tif", 1, i), loc(well=name, tp=i), prediction(0.5)
                )
                store.beat(db, state="running", detail=f"{name} {i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in ("A01", "B01", "C01")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.counts(db).done == 180
    assert not db.in_transaction


def test_another_threads_write_does_not_join_a_transaction_that_rolls_back(target: str) -> None:
    db = store.open_db(target)
    began = threading.Event()

    def beat_meanwhile() -> None:
        began.wait()
        store.beat(db, state="running", detail="from the other thread")

    other = threading.Thread(target=beat_meanwhile)
    other.start()
    with pytest.raises(RuntimeError), connection.transaction(db):
        store.record_failure(db, version("/x.tif"), reason="r", attempts=1)
        began.set()
        time.sleep(0.3)  # the other thread tries to write now
        raise RuntimeError("roll back")
    other.join()
    assert store.counts(db).failed == 0  # rolled back
    hb = store.last_heartbeat(db)
    assert hb is not None and hb.detail == "from the other thread"  # not rolled back with it


def test_a_thread_sharing_the_writers_connection_sees_only_committed_rows(target: str) -> None:
    """Bug (issue 12): the alert thread read through the writer's connection without its lock
    and saw rows of a transaction still in progress (here: one that then rolls back)."""
    db = store.open_db(target)
    seen: list[int] = []
    read = threading.Event()

    def reader() -> None:
        seen.append(store.counts(db).failed)
        read.set()

    t = threading.Thread(target=reader)
    with pytest.raises(RuntimeError), connection.transaction(db):
        store.record_failure(db, version("/x.tif"), reason="r", attempts=1)
        t.start()
        read.wait(1.0)  # a reader that does not wait for the lock answers now
        raise RuntimeError("roll back")
    t.join()
    assert seen == [0]


# -- images: the one "already recorded?" rule -------------------------------------------------


def test_done_version_is_never_redone_failed_one_is_retried_once_the_file_changes(
    target: str,
) -> None:
    db = store.open_db(target)
    done = store.record_result(db, version("/d.tif", 10, 5, "abc"), loc(), prediction(0.2))
    # done: the same stat (the daemon asks before hashing), or the same content after a touch
    assert store.already_recorded(db, version("/d.tif", 10, 5)) == done
    assert store.already_recorded(db, version("/d.tif", 10, 5, "abc")) == done
    assert store.already_recorded(db, version("/d.tif", 10, 9, "abc")) == done  # touched
    assert store.already_recorded(db, version("/d.tif", 10, 9)) is None  # not known yet: read it
    assert store.already_recorded(db, version("/d.tif", 10, 5, "new")) is None  # new content
    assert store.already_recorded(db, version("/other.tif", 10, 5, "abc")) is None  # per path

    failed = store.record_failure(db, version("/f.tif", 3, 1, "xyz"), reason="bad", attempts=5)
    assert store.already_recorded(db, version("/f.tif", 3, 1)) == failed  # unchanged: not again
    assert store.already_recorded(db, version("/f.tif", 3, 1, "xyz")) == failed
    assert store.already_recorded(db, version("/f.tif", 3, 2, "xyz")) is None  # touched: retry
    assert store.already_recorded(db, version("/f.tif", 4, 2)) is None  # rewritten: retry
    assert store.already_recorded(db, version("/f.tif", 3, 1, "other")) is None  # new content


def test_image_versions_are_updated_and_superseded(target: str) -> None:
    db = store.open_db(target)
    v1 = version("/img/a.tif", 10, 5, "abc")
    first = store.record_failure(db, v1, reason="truncated", attempts=1, location=loc())
    # the same version analysed after all: the same record, now done
    assert store.record_result(db, v1, loc(), prediction(0.4)) == first
    rewritten = store.record_result(db, version("/img/a.tif", 12, 9, "def"), loc(), prediction(0.6))
    assert rewritten != first
    assert store.already_recorded(db, v1) is None  # superseded: no longer current
    history = store.images_for_well(db, "P1", "A01", include_superseded=True)
    assert [(i.id, i.superseded_by) for i in history] == [(first, rewritten), (rewritten, None)]
    assert [i.id for i in store.images_for_well(db, "P1", "A01")] == [rewritten]
    c = store.counts(db)
    assert (c.done, c.failed, c.superseded) == (1, 0, 1)


def test_predictions_failures_and_reads(target: str) -> None:
    db = store.open_db(target)
    a = add_scored(db, "/img/a_t0.tif", 0.2, loc(tp=0))
    add_scored(db, "/img/a_t1.tif", 0.7, loc(tp=1))
    add_scored(db, "/img/b_t0.tif", 0.1, loc(well="B01"))
    # a newer model rescoring an image: the latest prediction is the one read by default
    store.record_prediction(db, a, prediction(0.25, "m2", cam=None))
    bad = version("/img/bad.tif", 3, 1)
    failed = store.record_failure(db, bad, reason="truncated TIFF", attempts=5)
    assert store.record_failure(db, bad, reason="still truncated", attempts=6) == failed

    c = store.counts(db)
    assert (c.done, c.failed) == (3, 1)
    imgs = store.images_for_well(db, "P1", "A01")
    assert [(i.timepoint, i.probability, i.model_hash) for i in imgs] == [
        (0, 0.25, "m2"),
        (1, 0.7, "m1"),
    ]
    by_m1 = store.images_for_well(db, "P1", "A01", model_hash="m1")
    assert [i.probability for i in by_m1] == [0.2, 0.7]
    assert imgs[1].has_cam and not imgs[0].has_cam
    assert store.cam_png(db, imgs[1].id) == b"\x89PNG fake"
    assert store.cam_png(db, imgs[0].id) is None
    (plate,) = store.list_plates(db)
    assert (plate.plate, plate.n_wells, plate.n_images) == ("P1", 2, 3)
    recent = store.recent_images(db, limit=1)
    assert recent[0].path == "/img/bad.tif" and recent[0].error == "still truncated"
    assert recent[0].attempts == 6
    assert sorted(p for p, _ in store.prediction_times(db)) == [
        "/img/a_t0.tif",
        "/img/a_t0.tif",
        "/img/a_t1.tif",
        "/img/b_t0.tif",
    ]
    with pytest.raises(store.StoreError, match="no image with id 999"):
        store.record_prediction(db, 999, prediction(0.5))


def test_counts_of_one_plate(target: str) -> None:
    """Bug (issue 12): the dashboard's per-plate figures counted the whole database."""
    db = store.open_db(target)
    add_scored(db, "/p1/a.tif", 0.2, loc(plate="P1"))
    add_scored(db, "/p1/b.tif", 0.2, loc(plate="P1", well="A02"))
    add_scored(db, "/p2/a.tif", 0.2, loc(plate="P2"))
    store.record_failure(
        db, version("/p2/bad.tif"), reason="x", attempts=1, location=loc(plate="P2")
    )
    store.record_failure(db, version("/nowhere.tif"), reason="x", attempts=1)
    assert (store.counts(db, "P1").done, store.counts(db, "P1").failed) == (2, 0)
    assert (store.counts(db, "P2").done, store.counts(db, "P2").failed) == (1, 1)
    assert (store.counts(db).done, store.counts(db).failed) == (3, 2)


def test_time_basis_is_stored_per_image_and_per_plate(target: str) -> None:
    """Bug (issue 12): the store dropped platemeta's time_basis; readers guessed it."""
    db = store.open_db(target)
    add_scored(db, "/e/a.tif", 0.2, loc(plate="CLOCK", basis="epoch"))
    add_scored(db, "/e/b.tif", 0.2, loc(plate="CLOCK", well="A02", basis="epoch"))
    add_scored(db, "/e/c.tif", 0.2, loc(plate="CLOCK", well="A03", basis="mtime"))
    add_scored(db, "/l/a.tif", 0.2, loc(plate="LAPSE"))
    (img,) = store.images_for_well(db, "CLOCK", "A01")
    assert img.time_basis == "epoch"
    bases = {p.plate: p.time_basis for p in store.list_plates(db)}
    assert bases == {"CLOCK": "epoch", "LAPSE": "elapsed"}  # the basis of most images


# -- wells: series and onsets per model ----------------------------------------------------------


def point(p: float, tp: int) -> store.TimePoint:
    return store.TimePoint(tp, tp * 3600.0, p, 0.1, 0.05, 2, 8, p)


ONSET = store.NewOnset(3600.0, 1, 7200.0, 2, 0.8, "elapsed")


def test_series_and_onsets_are_kept_per_model(target: str) -> None:
    db = store.open_db(target)
    add_scored(db, "/a.tif", 0.2, loc())
    store.register_model(db, model_hash="daemon", name="d", metadata_json="{}", provider="CPU")
    series = [point(0.1, 0), point(0.9, 1), point(0.9, 2)]
    new = store.save_well_analysis(
        db, "P1", "A01", model_hash="daemon", series=series, onset=ONSET, episode=0
    )
    assert new is not None and (new.model_hash, new.episode, new.time_basis) == (
        "daemon",
        0,
        "elapsed",
    )
    # a re-analysis with another model sits beside it and does not overwrite it
    again = store.save_well_analysis(
        db, "P1", "A01", model_hash="other", series=series[:1], onset=None, episode=0
    )
    assert again is None
    assert len(store.well_series(db, "P1", "A01")) == 3  # the daemon's current model
    assert len(store.well_series(db, "P1", "A01", model_hash="other")) == 1
    assert [o.model_hash for o in store.list_onsets(db)] == ["daemon"]
    assert store.list_onsets(db, model_hash="other") == []
    assert (
        store.save_well_analysis(  # the same episode again: no second onset
            db, "P1", "A01", model_hash="daemon", series=series, onset=ONSET, episode=0
        )
        is None
    )
    (summary,) = store.well_summary(db, "P1")
    assert summary.onset and summary.n_timepoints == 3 and summary.last_probability == 0.9


def test_plate_never_seen_by_the_current_model_is_shown_through_its_last_model(target: str) -> None:
    db = store.open_db(target)
    store.register_model(db, model_hash="v1", name="a", metadata_json="{}", provider="CPU", now=1)
    add_scored(db, "/old.tif", 0.2, loc(plate="OLD"), model="v1")
    store.save_well_analysis(
        db, "OLD", "A01", model_hash="v1", series=[point(0.9, 0)], onset=ONSET, episode=0
    )
    store.register_model(db, model_hash="v2", name="b", metadata_json="{}", provider="CPU", now=2)
    assert store.plate_model(db, "OLD") == "v1"
    assert [p.probability for p in store.well_series(db, "OLD", "A01")] == [0.9]
    assert len(store.list_onsets(db, "OLD")) == 1
    assert store.list_plates(db)[0].n_onsets == 1


def test_reset_closes_the_episode_and_a_stale_detection_is_not_stored(target: str) -> None:
    db = store.open_db(target)
    series = [point(0.9, 0), point(0.9, 1)]
    store.save_well_analysis(db, "P1", "A01", model_hash="m", series=series, onset=ONSET, episode=0)
    ro = store.open_db(target, readonly=True)
    with pytest.raises(store.StoreError, match="read-only"):
        store.reset_well(ro, "P1", "A01", by="ana")
    assert store.reset_well(db, "P1", "A01", by="ana", now=5.0) == 1
    assert store.well_state(db, "P1", "A01") == store.WellState(1, 3600.0)
    (onset,) = store.list_onsets(db)
    assert (onset.reset_by, onset.reset_at, onset.active) == ("ana", 5.0, False)
    # a detection computed for episode 0 before the reset arrives late: not stored
    assert (
        store.save_well_analysis(
            db, "P1", "A01", model_hash="m2", series=series, onset=ONSET, episode=0
        )
        is None
    )
    assert store.reset_well(db, "P1", "A01", by="ana") == 2


# -- models, heartbeat, liveness -------------------------------------------------------------


def test_models_and_heartbeat(target: str) -> None:
    db = store.open_db(target)
    assert store.current_model(db) is None and store.last_heartbeat(db) is None
    store.register_model(db, model_hash="m1", name="a", metadata_json="{}", provider="CPU", now=10)
    store.register_model(db, model_hash="m2", name="b", metadata_json="{}", provider="CPU", now=20)
    store.register_model(db, model_hash="m1", name="a", metadata_json="{}", provider="CUDA", now=30)
    m = store.current_model(db)
    assert m is not None and (m.model_hash, m.provider, m.first_seen) == ("m1", "CUDA", 10.0)
    assert [x.model_hash for x in store.list_models(db)] == ["m1", "m2"]

    store.beat(db, state="running", detail="3 queued", queued=3, interval_s=10.0, now=100.0)
    store.beat(db, state="idle", queued=0, interval_s=10.0, now=200.0)
    hb = store.last_heartbeat(db)
    assert hb is not None and (hb.state, hb.at, hb.pid, hb.queued) == (
        "idle",
        200.0,
        os.getpid(),
        0,
    )
    assert len(store.heartbeats(db)) == 1  # one row per instrument, overwritten


def test_liveness_is_three_of_the_daemons_own_heartbeats_at_least_30_s() -> None:
    """Bug (issue 12): the dashboard said 120 s, `stemwatch status` max(30 s, 3 x its config's
    heartbeat); now the heartbeat carries its interval and owns the one rule."""

    def hb(interval: float | None, state: str = "running") -> store.Heartbeat:
        return store.Heartbeat(1, "h", state, "", at=1000.0, interval_s=interval)

    assert hb(60.0).stale_after_s == 180.0
    assert hb(2.0).stale_after_s == 30.0
    assert hb(None).stale_after_s == 30.0  # written before v3: the default 10 s interval
    assert hb(60.0).liveness(now=1000.0 + 179) == "alive"
    assert hb(60.0).liveness(now=1000.0 + 181) == "stale"
    assert hb(10.0).liveness(now=1000.0 + 60) == "stale"  # the dashboard said alive here
    assert hb(10.0).liveness(now=1060.0, stale_after_s=100.0) == "alive"  # an explicit override
    assert hb(10.0, "stopped").liveness(now=1001.0) == "stopped"


# -- alerts ------------------------------------------------------------------------------------


def test_alerts_deliveries_and_conditions(target: str) -> None:
    db = store.open_db(target)
    a = store.record_alert(db, "onset", "P1 A01", plate="P1", well="A01", dedup_key="k", now=1.0)
    assert a is not None
    assert store.record_alert(db, "onset", "again", dedup_key="k") is None  # seen before
    store.set_channel_results(db, a, {"x": "sent"})
    (alert,) = store.list_alerts(db, unacknowledged_only=True)
    assert alert.channel_results == {"x": "sent"}
    store.acknowledge_alert(db, alert.id, by="ana", now=5.0)
    assert store.list_alerts(db, unacknowledged_only=True) == []
    (acked,) = store.list_alerts(db)
    assert (acked.acknowledged_by, acked.acknowledged_at) == ("ana", 5.0)
    with pytest.raises(store.StoreError, match="no alert with id 42"):
        store.acknowledge_alert(db, 42, by="ana")

    store.record_delivery(db, a, "lab", "sent", now=10.0)
    store.record_delivery(db, a, "lab", "rate-limited", now=11.0)
    assert store.deliveries_since(db, "lab", 0.0) == 1  # held back ones do not count
    (held,) = store.held_back(db, "lab")
    assert held.message == "P1 A01"
    store.record_delivery(db, None, "lab", "sent", summarised=[held.delivery_id], now=12.0)
    assert store.held_back(db, "lab") == []

    assert store.alert_condition(db, "stall") is None
    store.begin_condition(db, "stall", since=3.0, alert_id=a)
    assert store.alert_condition(db, "stall") == store.AlertCondition("stall", True, 3.0, a)
    store.end_condition(db, "stall")
    cond = store.alert_condition(db, "stall")
    assert cond is not None and not cond.active


# -- issue 11: retries, skipped files, moves, ctime, the daemon lock ----------------------------


def test_transient_failure_is_due_again_and_never_forgotten(target: str) -> None:
    db = store.open_db(target, instrument="scope-1")
    v = version("/img/locked.tif")
    image_id = store.record_failure(
        db, v, reason="permission denied", attempts=5, retry_at=1000.0, now=900.0
    )
    found = store.recorded_version(db, v, now=999.0)
    assert found == store.RecordedVersion(image_id, "failed", 1000.0)
    assert store.recorded_version(db, v, now=1000.0) is None  # due: read it again
    corrupt = version("/img/corrupt.tif")
    store.record_failure(db, corrupt, reason="truncated", attempts=5, now=900.0)
    assert store.recorded_version(db, corrupt, now=1e12) is not None  # until it changes
    assert store.recorded_version(db, version("/img/corrupt.tif", size=101), now=1e12) is None


def test_ctime_tells_a_same_size_same_mtime_rewrite(target: str) -> None:
    db = store.open_db(target, instrument="scope-1")
    v = store.FileVersion("/img/a.tif", 100, 5, "h1", ctime_ns=7)
    add_scored_version = store.record_result(db, v, loc(), prediction(0.4))
    assert store.already_recorded(db, v) == add_scored_version
    rewritten = store.FileVersion("/img/a.tif", 100, 5, None, ctime_ns=8)
    assert store.already_recorded(db, rewritten) is None  # read it, the hash decides
    legacy = store.FileVersion("/img/a.tif", 100, 5)  # rows and callers without a ctime
    assert store.already_recorded(db, legacy) == add_scored_version
    store.refresh_version(db, add_scored_version, store.FileVersion("/img/a.tif", 100, 5,
                                                                    ctime_ns=8))  # fmt: skip
    assert store.already_recorded(db, rewritten) == add_scored_version


def test_skipped_files_are_recorded_with_the_reason(target: str) -> None:
    db = store.open_db(target, instrument="scope-1")
    v = version("/img/P1_A01_mask.tif")
    store.record_skipped(db, v, kind="ignored", reason="not an image of cells: 'mask'")
    found = store.recorded_version(db, v)
    assert found is not None and (found.status, found.skip_kind) == ("skipped", "ignored")
    assert store.already_recorded(db, v) is None  # not an image record
    assert store.recorded_version(db, version("/img/P1_A01_mask.tif", size=5)) is None
    store.record_skipped(db, version("/img/x.nd2"), kind="unsupported", reason="Nikon ND2")
    store.record_skipped(db, version("/img/y.nd2"), kind="unsupported", reason="Nikon ND2")
    top = store.skipped_counts(db)
    assert (top[0].kind, top[0].count) == ("unsupported", 2)


def test_a_moved_file_keeps_its_record_and_prediction(target: str) -> None:
    db = store.open_db(target, instrument="scope-1")
    image_id = store.record_result(db, version("/a/old.tif", h="hh"), loc("A01"), prediction(0.7))
    (cand,) = store.moved_from(db, "hh", "/b/new.tif")
    assert (cand.image_id, cand.path, cand.well) == (image_id, "/a/old.tif", "A01")
    store.record_move(db, image_id, version("/b/new.tif", h="hh"), loc("B02"))
    (img,) = store.recent_images(db)
    assert (img.id, img.path, img.well, img.probability) == (image_id, "/b/new.tif", "B02", 0.7)
    assert store.moved_from(db, "hh", "/b/new.tif") == []


def test_names_that_are_not_utf8_are_stored_escaped(target: str) -> None:
    db = store.open_db(target, instrument="scope-1")
    raw = os.fsdecode(b"/img/P9_\xe4\xf6\xfc.tif")
    image_id = store.record_failure(db, version(raw), reason=f"{raw}: odd", attempts=1)
    assert store.already_recorded(db, version(raw)) == image_id
    (img,) = store.recent_images(db)
    assert (
        img.path == "/img/P9_\\xe4\\xf6\\xfc.tif"
        and img.error == "/img/P9_\\xe4\\xf6\\xfc.tif: odd"
    )


def test_daemon_lock_is_exclusive_and_freed_when_the_owner_dies(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "s.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom stemwatch import store\n"
         f"lock = store.claim_daemon({str(db)!r}, instrument='scope-1', watching='/scope')\n"
         "print('held', flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(store.StoreLockedError, match=f"pid {holder.pid} on .* /scope"):
            store.claim_daemon(db, instrument="scope-1", watching="/other")
        with store.claim_daemon(db, instrument="scope-2", watching="/other") as other:
            assert other.held  # another instrument shares the database freely
    finally:
        holder.kill()  # a crash: the kernel frees the lock
        holder.wait()
    with store.claim_daemon(db, instrument="scope-1", watching="/other") as lock:
        assert lock.held
    assert not lock.held


def test_daemon_lock_on_either_engine_is_per_instrument(target: str) -> None:
    first = store.claim_daemon(target, instrument="scope-1", watching="/a")
    try:
        with pytest.raises(store.StoreLockedError, match="as instrument 'scope-1'"):
            store.claim_daemon(target, instrument="scope-1", watching="/b")
        store.claim_daemon(target, instrument="scope-2", watching="/b").release()
    finally:
        first.release()
    store.claim_daemon(target, instrument="scope-1", watching="/b").release()


# -- what the dashboard reads (issue 13) --------------------------------------------------------


def test_watched_folders_are_recorded_once_resolved(target: str, tmp_path: Path) -> None:
    db = store.open_db(target)
    (tmp_path / "scope").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "scope")
    store.record_watched_folder(db, tmp_path / "scope", now=10.0)
    store.record_watched_folder(db, tmp_path / "link", now=20.0)  # the same folder
    store.record_watched_folder(db, tmp_path / "other", now=30.0)
    folders = store.watched_folders(db)
    assert [(f.path, f.first_seen, f.last_seen) for f in folders] == [
        (str((tmp_path / "scope").resolve()), 10.0, 20.0),
        (str((tmp_path / "other").resolve()), 30.0, 30.0),
    ]


def test_unplaced_images_keep_their_reason_until_placed(target: str) -> None:
    db = store.open_db(target)
    v = version("/i/odd-name.tif", h="h1")
    store.record_result(db, v, None, prediction(0.3), unplaced_reason="no well in the name")
    add_scored(db, "/i/a.tif", 0.2, loc())
    store.record_failure(db, version("/i/bad.tif"), reason="truncated TIFF", attempts=3)
    unplaced = {i.path: i for i in store.unplaced_images(db)}
    assert unplaced["/i/odd-name.tif"].unplaced_reason == "no well in the name"
    assert unplaced["/i/bad.tif"].error == "truncated TIFF"
    assert "/i/a.tif" not in unplaced and store.count_unplaced(db) == 2
    store.record_result(db, v, loc("B01"), prediction(0.3))  # resolved after all
    assert store.count_unplaced(db) == 1
    (failed,) = store.failed_images(db)
    assert failed.path == "/i/bad.tif" and failed.error == "truncated TIFF"
    assert store.failed_images(db, since=time.time() + 60) == []


def test_throughput_per_hour_and_heartbeat_log(target: str) -> None:
    db = store.open_db(target)
    t0 = 1_000_000.0
    for k, t in enumerate((t0 + 10, t0 + 20, t0 + 7300)):
        store.record_result(db, version(f"/i/{k}.tif", h=str(k)), loc(tp=k), prediction(0.1), now=t)
    store.record_failure(db, version("/i/x.tif"), reason="bad", attempts=1, now=t0 + 3700)
    bins = store.throughput(db, since=t0, until=t0 + 4 * 3600, bin_s=3600)
    assert [(b.start - t0, b.scored, b.failed) for b in bins] == [
        (0, 2, 0),
        (3600, 0, 1),
        (7200, 1, 0),
        (10800, 0, 0),
        (14400, 0, 0),
    ]
    store.record_failure(db, version("/i/y.tif"), reason="bad", attempts=1, now=t0 + 30 * 86400)
    assert len(store.throughput(db, since=t0, until=t0 + 4 * 3600, bin_s=3600)) == 5  # until
    for k in range(3):
        store.beat(db, state="running", queued=5 - k, now=t0 + 60 * k)
    store.beat(db, state="running", queued=1, now=t0 + 9 * 86400)  # a week on: old ones go
    history = store.heartbeat_history(db, since=0.0)
    assert [(h.at - t0, h.queued) for h in history] == [(9 * 86400, 1)]


def test_plate_series_and_well_summary_read_whole_plates(target: str) -> None:
    db = store.open_db(target)
    points = [store.TimePoint(tp, tp * 3600.0, 0.1 * tp, 0.01, 0.01, 2, 8, None) for tp in range(3)]
    with store.batch(db):
        for well in ("A01", "A02", "B01"):
            add_scored(db, f"/i/{well}.tif", 0.2, loc(well))
            store.save_well_analysis(
                db, "P1", well, model_hash="m1", series=points, onset=None, episode=0
            )
    series = store.plate_series(db, "P1")
    assert [(p.well, p.seq) for p in series][:4] == [("A01", 0), ("A01", 1), ("A01", 2), ("A02", 0)]
    assert len(store.plate_series(db, "P1", wells=["B01"])) == 3
    assert store.plate_series(db, "P1", wells=[]) == []
    summary = {w.well: w for w in store.well_summary(db, "P1")}
    assert summary["A02"].n_timepoints == 3 and summary["A02"].last_probability == pytest.approx(
        0.2
    )
    assert summary["A02"].last_time_s == 7200.0 and summary["A02"].n_images == 1


def test_a_batch_is_all_or_nothing(target: str) -> None:
    db = store.open_db(target)
    with pytest.raises(RuntimeError), store.batch(db):
        add_scored(db, "/i/a.tif", 0.2, loc())
        raise RuntimeError("interrupted")
    assert store.counts(db).done == 0


def test_saving_from_a_seq_replaces_only_the_tail_of_the_series(target: str) -> None:
    db = store.open_db(target)
    series = [point(0.1, 0), point(0.2, 1), point(0.3, 2)]
    store.save_well_analysis(db, "P1", "A01", model_hash="m", series=series, onset=None, episode=0)
    # the last point changes and one is added: only those two are written
    tail = [point(0.35, 2), point(0.9, 3)]
    store.save_well_analysis(
        db, "P1", "A01", model_hash="m", series=tail, onset=None, episode=0, from_seq=2
    )
    got = store.well_series(db, "P1", "A01", model_hash="m")
    assert [(p.seq, p.probability) for p in got] == [(0, 0.1), (1, 0.2), (2, 0.35), (3, 0.9)]
    # an empty tail drops the points from there on (a time point that lost its last field)
    store.save_well_analysis(
        db, "P1", "A01", model_hash="m", series=[], onset=ONSET, episode=0, from_seq=1
    )
    assert [p.probability for p in store.well_series(db, "P1", "A01", model_hash="m")] == [0.1]
    assert len(store.list_onsets(db, model_hash="m")) == 1


def test_image_record_reads_one_image_with_one_models_prediction(target: str) -> None:
    db = store.open_db(target)
    a = add_scored(db, "/a.tif", 0.2, loc(field=3, tp=2), model="m1")
    store.record_prediction(db, a, prediction(0.7, model="m2"))
    one = store.image_record(db, a, model_hash="m1")
    assert one is not None and (one.path, one.field, one.timepoint) == ("/a.tif", 3, 2)
    assert (one.probability, one.model_hash, one.n_tiles) == (0.2, "m1", 9)
    assert one == store.images_for_well(db, "P1", "A01", model_hash="m1")[0]
    latest = store.image_record(db, a)
    assert latest is not None and (latest.probability, latest.model_hash) == (0.7, "m2")
    missing = store.image_record(db, a, model_hash="m3")
    assert missing is not None and missing.probability is None
    assert store.image_record(db, a + 1000) is None
