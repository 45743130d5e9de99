"""The facility store: instruments sharing one database, on both engines; what only
PostgreSQL does (advisory-locked migrations, reconnects, its errors); database targets."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from pgserver import PostgresServer

from stemwatch import store
from stemwatch.core.platemeta import ImageLocation
from stemwatch.store.schema import MIGRATIONS


def loc(plate: str = "P1", well: str = "A01", tp: int = 0) -> ImageLocation:
    return ImageLocation(plate, well, 0, tp, tp * 3600.0, "test", time_basis="elapsed")


def scored(db: store.Database, path: str, p: float, location: ImageLocation) -> int:
    return store.record_result(
        db,
        store.FileVersion(path, 100, 1, f"h{path}{db.writer}"),
        location,
        store.Prediction("m", p),
    )


def point(p: float, tp: int) -> store.TimePoint:
    return store.TimePoint(tp, tp * 3600.0, p, 0.1, 0.05, 2, 8, p)


ONSET = store.NewOnset(3600.0, 1, 7200.0, 2, 0.8, "elapsed")


# -- instruments share a database without stepping on each other --------------------------------


def test_two_instruments_with_the_same_paths_and_plate_names_stay_apart(target: str) -> None:
    a = store.open_db(target, instrument="leica")
    b = store.open_db(target, instrument="zeiss")
    for db, p in ((a, 0.2), (b, 0.9)):
        store.register_model(db, model_hash="m", name="n", metadata_json="{}", provider=db.writer)
        store.beat(db, state="running", interval_s=10.0)
        scored(db, "/export/P1/A01_t0.tif", p, loc())  # the same path on both PCs
        store.save_well_analysis(
            db, "P1", "A01", model_hash="m", series=[point(p, 0)], onset=None, episode=0
        )
    # each daemon knows only its own file
    v = store.FileVersion("/export/P1/A01_t0.tif", 100, 1)
    assert store.already_recorded(a, v) != store.already_recorded(b, v)
    assert store.already_recorded(a, v) is not None and store.already_recorded(b, v) is not None
    # the facility sees both plates, by instrument
    facility = store.open_db(target, readonly=True)
    plates = store.list_plates(facility)
    assert [(p.instrument, p.plate, p.n_images) for p in plates] == [
        ("leica", "P1", 1),
        ("zeiss", "P1", 1),
    ]
    assert [p.instrument for p in store.list_plates(facility, instrument="zeiss")] == ["zeiss"]
    assert store.counts(facility).done == 2
    assert store.counts(facility, "P1", instrument="leica").done == 1
    # a plate name on two instruments: say which
    with pytest.raises(store.StoreError, match=r"2 instruments.*instrument="):
        store.well_summary(facility, "P1")
    (wa,) = store.well_summary(facility, "P1", instrument="leica")
    (wb,) = store.well_summary(facility, "P1", instrument="zeiss")
    assert (wa.last_probability, wb.last_probability) == (0.2, 0.9)
    assert [
        x.probability for x in store.well_series(facility, "P1", "A01", instrument="zeiss")
    ] == [0.9]
    # each daemon's handle answers for its own instrument without being told
    assert [w.last_probability for w in store.well_summary(b, "P1")] == [0.9]
    assert [i.instrument for i in store.images_for_well(a, "P1", "A01")] == ["leica"]
    # one heartbeat and one current model per instrument
    assert [(h.instrument, h.state) for h in store.heartbeats(facility)] == [
        ("leica", "running"),
        ("zeiss", "running"),
    ]
    hb = store.last_heartbeat(facility, instrument="zeiss")
    assert hb is not None and hb.instrument == "zeiss"
    model = store.current_model(facility, instrument="leica")
    assert model is not None and model.provider == "leica"
    assert {m.instrument for m in store.list_models(facility)} == {"leica", "zeiss"}
    assert store.list_instruments(facility) == ["leica", "zeiss"]


def test_each_instrument_has_its_own_alerts_conditions_and_rate_limit(target: str) -> None:
    a = store.open_db(target, instrument="leica")
    b = store.open_db(target, instrument="zeiss")
    first = store.record_alert(a, "onset", "P1 A01", dedup_key="onset:P1:A01:0")
    # the same dedup key on another instrument is another alert
    other = store.record_alert(b, "onset", "P1 A01", dedup_key="onset:P1:A01:0")
    assert first is not None and other is not None and first != other
    assert store.record_alert(a, "onset", "again", dedup_key="onset:P1:A01:0") is None
    store.begin_condition(a, "stall", since=1.0, alert_id=first)
    assert store.alert_condition(b, "stall") is None
    store.record_delivery(a, first, "lab", "sent", now=10.0)
    assert (store.deliveries_since(a, "lab", 0.0), store.deliveries_since(b, "lab", 0.0)) == (1, 0)
    facility = store.open_db(target)
    assert {x.instrument for x in store.list_alerts(facility)} == {"leica", "zeiss"}
    assert [x.instrument for x in store.list_alerts(facility, instrument="zeiss")] == ["zeiss"]
    store.acknowledge_alert(facility, other, by="ana")  # the dashboard acknowledges any
    assert [x.id for x in store.list_alerts(facility, unacknowledged_only=True)] == [first]


def test_reset_from_the_dashboard_reaches_the_right_instruments_well(target: str) -> None:
    a = store.open_db(target, instrument="leica")
    b = store.open_db(target, instrument="zeiss")
    for db in (a, b):
        scored(db, "/x/A01.tif", 0.9, loc())
        store.save_well_analysis(
            db, "P1", "A01", model_hash="m", series=[point(0.9, 0)], onset=ONSET, episode=0
        )
    dashboard = store.open_db(target)
    assert store.reset_well(dashboard, "P1", "A01", by="ana", instrument="zeiss") == 1
    assert store.well_state(b, "P1", "A01").episode == 1
    assert store.well_state(a, "P1", "A01").episode == 0  # leica's well untouched
    active = store.list_onsets(dashboard, include_reset=False)
    assert [o.instrument for o in active] == ["leica"]


def test_what_the_dashboard_reads_is_kept_and_filtered_per_instrument(
    target: str, tmp_path: Path
) -> None:
    """Watched folders, the heartbeat log, unplaced and failed images, throughput and whole
    plate series (schema v5) belong to an instrument, like everything since v4."""
    a = store.open_db(target, instrument="leica")
    b = store.open_db(target, instrument="zeiss")
    t0 = 1_000_000.0
    for db, folder in ((a, tmp_path / "leica"), (b, tmp_path / "zeiss")):
        store.record_watched_folder(db, folder, now=t0)
        store.beat(db, state="running", queued=3, now=t0)
        store.record_result(  # 0.83 h after t0: the first hour (a cast that rounds says 1)
            db,
            store.FileVersion("/export/odd.tif", 1, 1, f"odd{db.writer}"),
            None,
            store.Prediction("m", 0.5),
            unplaced_reason="no well in the name",
            now=t0 + 3000,
        )
        store.record_result(
            db,
            store.FileVersion("/export/P1/A01.tif", 1, 1, f"a{db.writer}"),
            loc(),
            store.Prediction("m", 0.5),
            now=t0 + 10 if db is a else t0 + 1,
        )
        store.save_well_analysis(
            db, "P1", "A01", model_hash="m", series=[point(0.5, 0)], onset=None, episode=0
        )
    store.record_failure(
        b, store.FileVersion("/export/bad.tif", 1, 1), reason="bad", attempts=1, now=t0 + 20
    )
    store.beat(b, state="running", queued=1, now=t0 + 9 * 86400)  # prunes zeiss's log only
    facility = store.open_db(target, readonly=True)

    folders = store.watched_folders(facility)
    assert [(f.instrument, f.path) for f in folders] == [
        ("leica", str((tmp_path / "leica").resolve())),
        ("zeiss", str((tmp_path / "zeiss").resolve())),
    ]
    assert [f.instrument for f in store.watched_folders(facility, instrument="zeiss")] == ["zeiss"]

    assert [(h.instrument, h.queued) for h in store.heartbeat_history(a, since=0.0)] == [
        ("leica", 3)
    ]
    assert [(h.instrument, h.queued) for h in store.heartbeat_history(facility, since=0.0)] == [
        ("leica", 3),
        ("zeiss", 1),
    ]

    assert store.count_unplaced(facility) == 3  # both odd files and zeiss's failure
    assert store.count_unplaced(facility, instrument="leica") == 1
    (odd,) = store.unplaced_images(facility, instrument="leica")
    assert (odd.instrument, odd.unplaced_reason) == ("leica", "no well in the name")
    assert [i.instrument for i in store.failed_images(facility)] == ["zeiss"]
    assert store.failed_images(facility, instrument="leica") == []

    def scored_per_hour(instrument: str | None) -> list[int]:
        bins = store.throughput(
            facility, since=t0, until=t0 + 2 * 3600, bin_s=3600, instrument=instrument
        )
        return [x.scored for x in bins]

    assert scored_per_hour(None) == [4, 0, 0]
    assert scored_per_hour("zeiss") == [2, 0, 0]
    (first,) = store.throughput(facility, since=t0, bin_s=7200, instrument="zeiss")
    assert (first.scored, first.failed) == (2, 1)

    plates = store.list_plates(facility)
    assert [(p.instrument, p.n_timepoints, p.first_arrival_at) for p in plates] == [
        ("leica", 1, t0 + 10),
        ("zeiss", 1, t0 + 1),
    ]
    assert [x.instrument for x in store.list_plates(facility, instrument="leica")] == ["leica"]
    with pytest.raises(store.StoreError, match="instrument="):
        store.plate_series(facility, "P1")
    (p,) = store.plate_series(facility, "P1", instrument="zeiss")
    assert (p.well, p.probability) == ("A01", 0.5)


def test_the_change_stamp_moves_with_every_commit(target: str) -> None:
    """Readers that cache (the dashboard) re-read when the stamp moves: on SQLite the file
    and its log, on PostgreSQL the server's log position (there is no file to watch)."""
    db = store.open_db(target, instrument="leica")
    before = store.change_stamp(target)
    store.beat(db, state="running")
    after = store.change_stamp(target)
    assert after != before
    with store.open_db(target, readonly=True) as ro:
        store.list_plates(ro)
    if store.parse_target(target).engine == "sqlite":  # (a server has other writers)
        assert store.change_stamp(target) == after
    db.close()


def test_instrument_checks_are_about_the_handles_instrument(target: str) -> None:
    a = store.open_db(target, instrument="leica")
    b = store.open_db(target, instrument="zeiss")
    scored(a, "/x/1.tif", 0.1, loc(tp=0))
    store.record_failure(b, store.FileVersion("/x/bad.tif", 1, 1), reason="bad", attempts=1)
    assert store.recent_failures(a, since=0.0).count == 0
    assert store.recent_failures(b, since=0.0).count == 1
    assert store.last_image_arrival(b) is not None  # its failure is its newest record
    assert store.recent_failures(store.open_db(target), since=0.0).count == 1  # facility: all


def test_a_new_instrument_name_on_a_used_database_is_warned_about(
    target: str, caplog: pytest.LogCaptureFixture
) -> None:
    scored(store.open_db(target, instrument="old-pc"), "/x/1.tif", 0.1, loc())
    with caplog.at_level("WARNING", logger="stemwatch.store.connection"):
        store.open_db(target, instrument="new-pc").close()
    assert "'new-pc' has no images here yet" in caplog.text and "old-pc (1 images)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="stemwatch.store.connection"):
        store.open_db(target, instrument="old-pc").close()
    assert caplog.text == ""


def test_a_bad_instrument_name_is_refused(target: str) -> None:
    for bad in ("", " padded", "tab\there", "x" * 65):
        with pytest.raises(store.StoreError, match="instrument name"):
            store.open_db(target, instrument=bad)


def test_daemons_starting_together_migrate_once_and_all_open(target: str) -> None:
    """Several daemons start at once on a new database: one creates the schema, the others
    wait for it (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE and busy_timeout)."""
    errors: list[BaseException] = []
    handles: list[store.Database] = []
    go = threading.Barrier(6)

    def start(i: int) -> None:
        try:
            go.wait()
            db = store.open_db(target, instrument=f"scope-{i}")
            store.beat(db, state="starting")
            handles.append(db)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.heartbeats(handles[0])) == 6
    for db in handles:
        db.close()


def test_writers_of_several_instruments_at_once(target: str) -> None:
    """Each daemon writes from its own connection at the same time; nothing lost."""
    errors: list[BaseException] = []

    def daemon(name: str) -> None:
        try:
            with store.open_db(target, instrument=name) as db:
                for i in range(25):
                    scored(db, f"/export/img{i}.tif", 0.5, loc(well=f"A{i % 3 + 1:02d}", tp=i))
                    store.save_well_analysis(
                        db,
                        "P1",
                        f"A{i % 3 + 1:02d}",
                        model_hash="m",
                        series=[point(0.5, t) for t in range(i // 3 + 1)],
                        onset=None,
                        episode=0,
                    )
                    store.beat(db, state="running", detail=str(i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=daemon, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db = store.open_db(target, readonly=True)
    assert store.counts(db).done == 75
    assert {(p.instrument, p.n_images) for p in store.list_plates(db)} == {
        ("a", 25),
        ("b", 25),
        ("c", 25),
    }


# -- migrations -----------------------------------------------------------------------------


def test_a_v3_file_migrates_to_instruments_under_its_daemons_host(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    r = sqlite3.connect(path, isolation_level=None)
    for m in MIGRATIONS[:3]:
        r.executescript(m.sqlite)
    r.execute("PRAGMA user_version = 3")
    r.execute(
        "INSERT INTO images (id, path, plate, well, field, timepoint, time_s, status, "
        "created_at, updated_at) VALUES (1, '/i/a.tif', 'P1', 'A01', 0, 0, 0.0, 'done', 1, 1)"
    )
    r.execute(
        "INSERT INTO heartbeat (id, pid, host, state, at) VALUES (1, 7, 'scope-pc', 'stopped', 1)"
    )
    r.execute(
        "INSERT INTO alerts (id, kind, message, created_at, dedup_key) "
        "VALUES (1, 'stall', 'm', 1, 'k')"
    )
    r.execute(
        "INSERT INTO alert_conditions (key, active, since, alert_id) VALUES ('stall', 1, 1, 1)"
    )
    r.execute(
        "INSERT INTO alert_deliveries (alert_id, channel, at, result) VALUES (1, 'lab', 1, 'sent')"
    )
    r.execute(
        "INSERT INTO models (model_hash, name, provider, first_seen, last_seen) "
        "VALUES ('m', 'n', 'CPU', 1, 1)"
    )
    r.close()
    db = store.open_db(path, instrument="scope-pc")
    assert (
        sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    )
    (img,) = store.recent_images(db)
    assert img.instrument == "scope-pc"
    assert store.already_recorded(db, store.FileVersion("/i/a.tif", None, None)) == 1
    (hb,) = store.heartbeats(db)
    assert (hb.instrument, hb.host, hb.pid) == ("scope-pc", "scope-pc", 7)
    assert store.alert_condition(db, "stall") == store.AlertCondition("stall", True, 1.0, 1)
    assert store.record_alert(db, "stall", "again", dedup_key="k") is None  # still deduplicated
    model = store.current_model(db)
    assert model is not None and model.instrument == "scope-pc"
    assert sqlite3.connect(path).execute("PRAGMA foreign_key_check").fetchall() == []


def test_every_migration_has_each_engines_own_ddl() -> None:
    """PostgreSQL DDL with SQLite's types would run but store the wrong kinds (no identity
    ids, 32-bit INTEGER for mtime_ns): each entry writes PostgreSQL's own."""
    for version, m in enumerate(MIGRATIONS, start=1):
        assert m.sqlite.strip() and m.postgres.strip(), f"v{version}"
        pg = m.postgres.upper()
        for sqlite_only in ("INTEGER PRIMARY KEY", "BLOB", " REAL", "PRAGMA", "AUTOINCREMENT"):
            assert sqlite_only not in pg, f"v{version}: {sqlite_only.strip()} in PostgreSQL DDL"


# -- PostgreSQL only ------------------------------------------------------------------------


def test_postgres_schema_version_is_kept_in_its_table(postgres_server: PostgresServer) -> None:
    url = postgres_server.new_database()
    store.open_db(url).close()
    name = url.rsplit("/", 1)[1]
    assert postgres_server.psql("SELECT version FROM stemwatch_schema", name) == str(
        store.SCHEMA_VERSION
    )
    postgres_server.psql(f"UPDATE stemwatch_schema SET version = {store.SCHEMA_VERSION + 1}", name)
    for readonly in (False, True):
        with pytest.raises(store.StoreError, match="newer than this stemwatch"):
            store.open_db(url, readonly=readonly)


def test_postgres_read_only_before_the_daemon_created_anything(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.new_database()
    with pytest.raises(store.StoreMissingError, match=r"no stemwatch schema.*start the daemon"):
        store.open_db(url, readonly=True)
    missing = postgres_server.url("no_such_db")
    with pytest.raises(store.StoreMissingError, match=r"no_such_db.*does not exist"):
        store.open_db(missing, readonly=True)


def test_postgres_refuses_another_programs_tables(postgres_server: PostgresServer) -> None:
    url = postgres_server.new_database()
    postgres_server.psql("CREATE TABLE invoices (x int)", url.rsplit("/", 1)[1])
    with pytest.raises(store.StoreError, match=r"another program's tables.*invoices"):
        store.open_db(url)


def test_postgres_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql://nobody@{str(tmp_path).replace('/', '%2F')}/stemwatch"
    with pytest.raises(store.StoreError, match=r"cannot connect.*is the server running"):
        store.open_db(url)


def test_postgres_reconnects_after_the_server_dropped_the_connection(
    postgres_server: PostgresServer,
) -> None:
    """A database restart must not stop a daemon: the next write reconnects."""
    url = postgres_server.new_database()
    db = store.open_db(url, instrument="leica")
    store.beat(db, state="running", detail="before")
    name = url.rsplit("/", 1)[1]
    killed = postgres_server.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND application_name = 'stemwatch'",
        name,
    )
    assert killed == "1"
    store.beat(db, state="running", detail="after")  # reconnects (a retry of the write)
    hb = store.last_heartbeat(db)
    assert hb is not None and hb.detail == "after"


def test_postgres_password_never_appears_in_messages(postgres_server: PostgresServer) -> None:
    url = postgres_server.url("no_such_db").replace("stemwatch_test@", "stemwatch_test:s3cret@")
    with pytest.raises(store.StoreError) as exc:
        store.open_db(url)
    assert "s3cret" not in str(exc.value) and "stemwatch_test@" in str(exc.value)


# -- targets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "engine"),
    [
        ("stemwatch.db", "sqlite"),
        ("/var/lib/stemwatch/stemwatch.db", "sqlite"),
        (r"C:\stemwatch\stemwatch.db", "sqlite"),
        ("postgresql://stemwatch@db.lab:5432/stemwatch", "postgresql"),
        ("postgres://db/stemwatch", "postgresql"),
        ("postgresql:///stemwatch?host=/run/postgresql", "postgresql"),
    ],
)
def test_targets_are_paths_or_postgres_urls(value: str, engine: str) -> None:
    assert store.parse_target(value).engine == engine


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("", "no database given"),
        ("mysql://db/x", "unsupported database URL scheme 'mysql'"),
        ("postgresql://db:port/x", "port is not a number"),
        ("postgresql://db/a/b", "not a database name"),
    ],
)
def test_bad_targets_say_what_to_write(value: str, match: str) -> None:
    with pytest.raises(store.StoreError, match=match):
        store.parse_target(value)


def test_urls_are_shown_without_password() -> None:
    t = store.parse_target("postgresql://ana:s3cret@db.lab/stemwatch?password=x&sslmode=require")
    assert t.display == "postgresql://ana@db.lab/stemwatch?password=***&sslmode=require"
