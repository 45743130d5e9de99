"""The monitor's SQLite database: schema, migrations, the write API and the read API.

One file, WAL mode (readers never block the writer), a busy timeout plus a short retry loop
for the rare lock that outlasts it. The schema is versioned with ``PRAGMA user_version`` and
an ordered list of migrations (:data:`MIGRATIONS`); opening for writing migrates forward,
a database written by a newer stemwatch is refused. The dashboard and ``stemwatch status``
read only through the named query functions at the end of this module, which return
dataclasses. See docs/database.md.

Times are stored as float seconds: ``*_at`` columns are wall-clock (Unix epoch), ``time_s``
is experiment time as resolved by :mod:`stemwatch.core.platemeta`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from stemwatch.core.errors import StemwatchError
from stemwatch.core.platemeta import ImageLocation

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_S = 10.0
LOCK_RETRIES = 5
IMAGE_STATUSES = ("queued", "done", "failed")


class StoreError(StemwatchError):
    """The database cannot be opened or written (read-only, newer schema, missing...)."""


# --------------------------------------------------------------------------------------------
# Schema and migrations
# --------------------------------------------------------------------------------------------

_V1 = """
CREATE TABLE images (
    id            INTEGER PRIMARY KEY,
    path          TEXT NOT NULL,
    size          INTEGER,
    mtime_ns      INTEGER,
    content_hash  TEXT,
    plate         TEXT,
    well          TEXT,
    field         INTEGER,
    timepoint     INTEGER,
    time_s        REAL,
    location_source TEXT,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'done', 'failed')),
    error         TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    superseded_by INTEGER REFERENCES images(id),
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);
CREATE INDEX images_path ON images(path);
CREATE INDEX images_well ON images(plate, well, timepoint);
CREATE INDEX images_status ON images(status);
CREATE INDEX images_updated ON images(updated_at);

CREATE TABLE predictions (
    id           INTEGER PRIMARY KEY,
    image_id     INTEGER NOT NULL REFERENCES images(id),
    model_hash   TEXT NOT NULL,
    probability  REAL NOT NULL,
    tile_mean    REAL,
    tile_sd      REAL,
    n_tiles      INTEGER,
    cam_png      BLOB,
    created_at   REAL NOT NULL,
    UNIQUE (image_id, model_hash)
);

CREATE TABLE well_series (
    plate        TEXT NOT NULL,
    well         TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    timepoint    INTEGER,
    time_s       REAL,
    probability  REAL NOT NULL,
    sd           REAL,
    sem          REAL,
    n_fields     INTEGER NOT NULL,
    n_tiles      INTEGER NOT NULL,
    smoothed     REAL,
    model_hash   TEXT,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (plate, well, seq)
);

CREATE TABLE onsets (
    id               INTEGER PRIMARY KEY,
    plate            TEXT NOT NULL,
    well             TEXT NOT NULL,
    episode          INTEGER NOT NULL,
    onset_time_s     REAL,
    onset_timepoint  INTEGER,
    detected_time_s  REAL,
    detected_at      REAL NOT NULL,
    probability      REAL,
    reset_at         REAL,
    reset_by         TEXT,
    UNIQUE (plate, well, episode)
);

CREATE TABLE well_state (
    plate                  TEXT NOT NULL,
    well                   TEXT NOT NULL,
    episode                INTEGER NOT NULL DEFAULT 0,
    rearm_after_key        REAL,
    reset_at               REAL,
    reset_by               TEXT,
    PRIMARY KEY (plate, well)
);

CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,
    plate            TEXT,
    well             TEXT,
    dedup_key        TEXT UNIQUE,
    message          TEXT NOT NULL,
    created_at       REAL NOT NULL,
    channel_results  TEXT NOT NULL DEFAULT '{}',
    acknowledged_by  TEXT,
    acknowledged_at  REAL
);
CREATE INDEX alerts_created ON alerts(created_at);

CREATE TABLE alert_deliveries (
    id         INTEGER PRIMARY KEY,
    alert_id   INTEGER REFERENCES alerts(id),
    channel    TEXT NOT NULL,
    at         REAL NOT NULL,
    result     TEXT NOT NULL
);
CREATE INDEX alert_deliveries_channel ON alert_deliveries(channel, at);

CREATE TABLE alert_conditions (
    key        TEXT PRIMARY KEY,
    active     INTEGER NOT NULL,
    since      REAL,
    alert_id   INTEGER REFERENCES alerts(id)
);

CREATE TABLE models (
    model_hash     TEXT PRIMARY KEY,
    name           TEXT,
    metadata_json  TEXT,
    provider       TEXT,
    first_seen     REAL NOT NULL,
    last_seen      REAL NOT NULL
);

CREATE TABLE heartbeat (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    pid     INTEGER,
    host    TEXT,
    state   TEXT,
    detail  TEXT,
    at      REAL NOT NULL
);
"""

# v2: onsets remember the time point at which they were detected (the dashboard marks it),
# and the stall check's max(created_at) gets an index.
_V2 = """
ALTER TABLE onsets ADD COLUMN detected_timepoint INTEGER;
CREATE INDEX images_created ON images(created_at);
"""

# Ordered: MIGRATIONS[i] takes the schema from version i to version i + 1. Never edit a
# released entry; append a new one.
MIGRATIONS: list[str] = [_V1, _V2]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version stored in the database (``PRAGMA user_version``)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, source: str = "database") -> int:
    """Apply the pending migrations in order; return the resulting version.

    Raises :class:`StoreError` for a database written by a newer stemwatch.
    """
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"{source}: schema version {current} is newer than this stemwatch understands "
            f"(up to {SCHEMA_VERSION}); upgrade stemwatch, or point --db at another file"
        )
    for version in range(current, SCHEMA_VERSION):
        log.info("%s: migrating schema v%d -> v%d", source, version, version + 1)
        # executescript commits first; run the migration and the version bump atomically.
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{MIGRATIONS[version]}\n"
                f"PRAGMA user_version = {version + 1};\nCOMMIT;"
            )
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return schema_version(conn)


# --------------------------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------------------------


def db_path_of(conn: sqlite3.Connection) -> str:
    """The file behind ``conn`` (for messages)."""
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main":
            return str(row[2]) or ":memory:"
    return "database"


def open_db(
    path: str | Path, *, readonly: bool = False, busy_timeout_s: float = BUSY_TIMEOUT_S
) -> sqlite3.Connection:
    """Open (and for writing, create and migrate) the stemwatch database at ``path``.

    ``readonly=True`` opens with ``mode=ro`` (the dashboard): the file must exist and already
    carry the current schema. Rows come back as :class:`sqlite3.Row`. The connection is in
    autocommit mode; the write functions here open their own short transactions.
    """
    p = Path(path)
    if readonly:
        if not p.is_file():
            raise StoreError(
                f"{p}: database not found; start the daemon (`stemwatch watch`) to create it, "
                "or pass the right --db"
            )
        try:
            uri = f"file:{urllib.parse.quote(p.resolve().as_posix())}?mode=ro"
            conn = _connect(uri, busy_timeout_s, uri=True)
            version = schema_version(conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{p}: cannot open read-only ({exc}); is it a stemwatch database on a local "
                "disk, with its -wal/-shm files readable?"
            ) from None
        if version > SCHEMA_VERSION:
            conn.close()
            raise StoreError(
                f"{p}: schema version {version} is newer than this stemwatch understands "
                f"(up to {SCHEMA_VERSION}); upgrade stemwatch"
            )
        if version < SCHEMA_VERSION:
            conn.close()
            raise StoreError(
                f"{p}: schema version {version}, expected {SCHEMA_VERSION}; "
                "run the daemon once to migrate it (a read-only open cannot)"
                if version
                else f"{p}: not a stemwatch database (no schema); check the --db path"
            )
        return conn

    if p.exists() and not os.access(p, os.W_OK):
        raise StoreError(
            f"{p}: database file is read-only; make it writable (chmod u+w) or open it "
            "read-only (the dashboard does)"
        )
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise StoreError(f"{p}: folder {parent} does not exist; create it or choose another path")
    if not os.access(parent, os.W_OK):
        raise StoreError(
            f"{p}: folder {parent} is not writable (SQLite needs it for the WAL files); "
            "choose a writable local folder"
        )
    try:
        conn = _connect(str(p), busy_timeout_s)
        foreign = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        if schema_version(conn) == 0 and foreign:
            conn.close()
            raise StoreError(
                f"{p}: another program's database (tables {', '.join(sorted(foreign)[:5])}, "
                "no stemwatch schema); point `database:` / --db at a new file"
            )
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{p}: cannot open as SQLite database ({exc}); check the path") from None
    if str(mode).lower() != "wal":
        log.warning(
            "%s: WAL mode unavailable (journal_mode=%s); is it on a network share?", p, mode
        )
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        _retry(lambda: migrate(conn, str(p)), str(p))
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(
            f"{p}: cannot create or migrate the stemwatch schema ({exc}); is this another "
            "program's database? Point `database:` / --db at a new file"
        ) from None
    return conn


class StoreConnection(sqlite3.Connection):
    """A connection that threads may share: write transactions take ``write_lock`` in turn."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.write_lock = threading.RLock()


def _connect(target: str, busy_timeout_s: float, *, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(
        target,
        timeout=busy_timeout_s,
        isolation_level=None,
        uri=uri,
        check_same_thread=False,
        factory=StoreConnection,
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _retry(fn: Callable[[], T], source: str) -> T:
    """Run ``fn``; on a lock that outlasted busy_timeout, back off and retry a few times."""
    delay = 0.2
    for attempt in range(LOCK_RETRIES + 1):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc).lower():
                raise StoreError(
                    f"{source}: attempt to write a read-only database; make the file and its "
                    "folder writable"
                ) from None
            if not _is_locked(exc) or attempt == LOCK_RETRIES:
                if _is_locked(exc):
                    raise StoreError(
                        f"{source}: database stayed locked after {LOCK_RETRIES} retries; "
                        "is another process holding a long write transaction?"
                    ) from None
                raise
            log.warning("%s: database locked, retry %d in %.1f s", source, attempt + 1, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction (``BEGIN IMMEDIATE``: takes the write lock up front).

    Nested use in one thread joins the outer transaction; another thread sharing the
    connection waits until it is over.
    """
    lock = getattr(conn, "write_lock", None) or contextlib.nullcontext()
    with lock:
        if conn.in_transaction:  # nested: join the outer one
            yield conn
            return
        source = db_path_of(conn)
        _retry(lambda: conn.execute("BEGIN IMMEDIATE"), source)
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            _retry(lambda: conn.execute("COMMIT"), source)


def write_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` in one write transaction, translating lock and read-only errors."""
    source = db_path_of(conn)

    def attempt() -> T:
        with transaction(conn):
            return fn(conn)

    return _retry(attempt, source)


# --------------------------------------------------------------------------------------------
# Write API (the daemon)
# --------------------------------------------------------------------------------------------


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def find_image(
    conn: sqlite3.Connection,
    path: str | Path,
    size: int | None,
    mtime_ns: int | None,
    content_hash: str | None,
) -> int | None:
    """The id of the current (not superseded) record of this exact file version, if any.

    A version matches on ``content_hash`` when both sides have one, else on size and mtime.
    """
    rows = conn.execute(
        "SELECT id, size, mtime_ns, content_hash FROM images "
        "WHERE path = ? AND superseded_by IS NULL ORDER BY id DESC",
        (str(path),),
    ).fetchall()
    for row in rows:
        if _same_version(row, size, mtime_ns, content_hash):
            return int(row["id"])
    return None


def _same_version(
    row: sqlite3.Row, size: int | None, mtime_ns: int | None, content_hash: str | None
) -> bool:
    if content_hash is not None and row["content_hash"] is not None:
        return bool(row["content_hash"] == content_hash)
    return bool(row["size"] == size and row["mtime_ns"] == mtime_ns)


def _check_status(status: str) -> None:
    if status not in IMAGE_STATUSES:
        raise ValueError(f"image status {status!r} is not one of {IMAGE_STATUSES}")


def register_image(
    conn: sqlite3.Connection,
    *,
    path: str | Path,
    size: int | None,
    mtime_ns: int | None,
    content_hash: str | None,
    location: ImageLocation | None,
    status: str = "queued",
    now: float | None = None,
) -> int:
    """Record an image version; return its id.

    The same version again updates that record (status, location). A new version of a known
    path (the instrument rewrote the file) gets a new record and the old ones point to it
    through ``superseded_by``: the history is kept, only the newest counts.
    """
    _check_status(status)
    t = _now(now)
    loc = _location_values(location)

    def do(c: sqlite3.Connection) -> int:
        existing = find_image(c, path, size, mtime_ns, content_hash)
        if existing is not None:
            c.execute(
                "UPDATE images SET status = ?, plate = coalesce(?, plate), "
                "well = coalesce(?, well), field = coalesce(?, field), "
                "timepoint = coalesce(?, timepoint), time_s = coalesce(?, time_s), "
                "location_source = coalesce(?, location_source), "
                "content_hash = coalesce(content_hash, ?), updated_at = ? WHERE id = ?",
                (status, *loc, content_hash, t, existing),
            )
            return existing
        return _insert_image(
            c,
            path=path,
            size=size,
            mtime_ns=mtime_ns,
            content_hash=content_hash,
            loc=loc,
            status=status,
            error=None,
            attempts=0,
            t=t,
        )

    return write_transaction(conn, do)


def _location_values(location: ImageLocation | None) -> tuple[Any, ...]:
    if location is None:
        return (None, None, None, None, None, None)
    return (
        location.plate,
        location.well,
        location.field,
        location.timepoint,
        location.time_s,
        location.source,
    )


def _insert_image(
    c: sqlite3.Connection,
    *,
    path: str | Path,
    size: int | None,
    mtime_ns: int | None,
    content_hash: str | None,
    loc: tuple[Any, ...],
    status: str,
    error: str | None,
    attempts: int,
    t: float,
) -> int:
    cur = c.execute(
        "INSERT INTO images (path, size, mtime_ns, content_hash, plate, well, field, timepoint, "
        "time_s, location_source, status, error, attempts, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (str(path), size, mtime_ns, content_hash, *loc, status, error, attempts, t, t),
    )
    new_id = int(cur.lastrowid or 0)
    c.execute(
        "UPDATE images SET superseded_by = ?, updated_at = ? "
        "WHERE path = ? AND id != ? AND superseded_by IS NULL",
        (new_id, t, str(path), new_id),
    )
    return new_id


def record_prediction(
    conn: sqlite3.Connection,
    image_id: int,
    *,
    model_hash: str,
    probability: float,
    tile_mean: float | None,
    tile_sd: float | None,
    n_tiles: int | None,
    cam_png: bytes | None,
    now: float | None = None,
) -> None:
    """Store the model's output for an image and mark the image done."""
    t = _now(now)

    def do(c: sqlite3.Connection) -> None:
        if c.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is None:
            raise StoreError(f"{db_path_of(c)}: no image with id {image_id}; register it first")
        c.execute(
            "INSERT INTO predictions (image_id, model_hash, probability, tile_mean, tile_sd, "
            "n_tiles, cam_png, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (image_id, model_hash) DO UPDATE SET probability = excluded.probability, "
            "tile_mean = excluded.tile_mean, tile_sd = excluded.tile_sd, "
            "n_tiles = excluded.n_tiles, cam_png = excluded.cam_png, "
            "created_at = excluded.created_at",
            (image_id, model_hash, float(probability), tile_mean, tile_sd, n_tiles, cam_png, t),
        )
        c.execute(
            "UPDATE images SET status = 'done', error = NULL, updated_at = ? WHERE id = ?",
            (t, image_id),
        )

    write_transaction(conn, do)


def record_failure(
    conn: sqlite3.Connection,
    *,
    path: str | Path,
    size: int | None,
    mtime_ns: int | None,
    reason: str,
    attempts: int,
    content_hash: str | None = None,
    location: ImageLocation | None = None,
    now: float | None = None,
) -> int:
    """Mark this version of ``path`` as failed with ``reason`` (recorded if new); return its id."""
    t = _now(now)
    loc = _location_values(location)

    def do(c: sqlite3.Connection) -> int:
        existing = find_image(c, path, size, mtime_ns, content_hash)
        if existing is not None:
            c.execute(
                "UPDATE images SET status = 'failed', error = ?, attempts = ?, updated_at = ? "
                "WHERE id = ?",
                (reason, attempts, t, existing),
            )
            return existing
        return _insert_image(
            c,
            path=path,
            size=size,
            mtime_ns=mtime_ns,
            content_hash=content_hash,
            loc=loc,
            status="failed",
            error=reason,
            attempts=attempts,
            t=t,
        )

    return write_transaction(conn, do)


def register_model(
    conn: sqlite3.Connection,
    *,
    model_hash: str,
    name: str,
    metadata_json: str,
    provider: str,
    now: float | None = None,
) -> None:
    """Record the model in use (first sighting kept; provider and last sighting updated)."""
    t = _now(now)
    write_transaction(
        conn,
        lambda c: c.execute(
            "INSERT INTO models (model_hash, name, metadata_json, provider, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model_hash) DO UPDATE SET "
            "name = excluded.name, metadata_json = excluded.metadata_json, "
            "provider = excluded.provider, last_seen = excluded.last_seen",
            (model_hash, name, metadata_json, provider, t, t),
        ),
    )


def beat(
    conn: sqlite3.Connection, *, state: str, detail: str = "", now: float | None = None
) -> None:
    """The daemon's heartbeat: one row, overwritten (pid, host, state, detail, time)."""
    t = _now(now)
    write_transaction(
        conn,
        lambda c: c.execute(
            "INSERT INTO heartbeat (id, pid, host, state, detail, at) VALUES (1, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, host = excluded.host, "
            "state = excluded.state, detail = excluded.detail, at = excluded.at",
            (os.getpid(), socket.gethostname(), state, detail, t),
        ),
    )


# --------------------------------------------------------------------------------------------
# Read API (dashboard, `stemwatch status`)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlateSummary:
    plate: str
    n_wells: int
    n_images: int
    n_failed: int
    first_time_s: float | None
    last_time_s: float | None
    last_update_at: float | None
    n_onsets: int


@dataclass(frozen=True)
class WellSummary:
    plate: str
    well: str
    n_images: int
    n_timepoints: int
    last_timepoint: int | None
    last_time_s: float | None
    last_probability: float | None
    last_sd: float | None
    last_smoothed: float | None
    onset: bool
    onset_time_s: float | None
    episode: int


@dataclass(frozen=True)
class SeriesPoint:
    plate: str
    well: str
    seq: int
    timepoint: int | None
    time_s: float | None
    probability: float
    sd: float | None
    sem: float | None
    n_fields: int
    n_tiles: int
    smoothed: float | None


@dataclass(frozen=True)
class OnsetRecord:
    id: int
    plate: str
    well: str
    episode: int
    onset_time_s: float | None
    onset_timepoint: int | None
    detected_time_s: float | None
    detected_at: float
    probability: float | None
    reset_at: float | None
    reset_by: str | None
    detected_timepoint: int | None = None

    @property
    def active(self) -> bool:
        return self.reset_at is None


@dataclass(frozen=True)
class AlertRecord:
    id: int
    kind: str
    plate: str | None
    well: str | None
    message: str
    created_at: float
    channel_results: dict[str, str] = field(default_factory=dict)
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: str
    plate: str | None
    well: str | None
    field: int | None
    timepoint: int | None
    time_s: float | None
    status: str
    error: str | None
    attempts: int
    size: int | None
    mtime_ns: int | None
    content_hash: str | None
    superseded_by: int | None
    updated_at: float
    probability: float | None = None
    model_hash: str | None = None
    tile_mean: float | None = None
    tile_sd: float | None = None
    n_tiles: int | None = None
    has_cam: bool = False


@dataclass(frozen=True)
class Heartbeat:
    pid: int | None
    host: str | None
    state: str | None
    detail: str | None
    at: float

    def age_s(self, now: float | None = None) -> float:
        return _now(now) - self.at

    def alive(self, stale_after_s: float = 120.0, now: float | None = None) -> bool:
        """Whether the daemon beat within ``stale_after_s`` and did not say it stopped."""
        return self.state != "stopped" and self.age_s(now) <= stale_after_s


@dataclass(frozen=True)
class Counts:
    queued: int = 0
    done: int = 0
    failed: int = 0
    superseded: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.done + self.failed


@dataclass(frozen=True)
class ModelRecord:
    model_hash: str
    name: str | None
    metadata_json: str | None
    provider: str | None
    first_seen: float
    last_seen: float


def list_plates(conn: sqlite3.Connection) -> list[PlateSummary]:
    """Every plate with images, by name."""
    rows = conn.execute(
        "SELECT plate, count(DISTINCT well) AS n_wells, count(*) AS n_images, "
        "sum(status = 'failed') AS n_failed, min(time_s) AS first_t, max(time_s) AS last_t, "
        "max(updated_at) AS last_up FROM images "
        "WHERE plate IS NOT NULL AND superseded_by IS NULL GROUP BY plate ORDER BY plate"
    ).fetchall()
    onsets = dict(
        conn.execute(
            "SELECT plate, count(*) FROM onsets WHERE reset_at IS NULL GROUP BY plate"
        ).fetchall()
    )
    return [
        PlateSummary(
            plate=r["plate"],
            n_wells=int(r["n_wells"]),
            n_images=int(r["n_images"]),
            n_failed=int(r["n_failed"] or 0),
            first_time_s=r["first_t"],
            last_time_s=r["last_t"],
            last_update_at=r["last_up"],
            n_onsets=int(onsets.get(r["plate"], 0)),
        )
        for r in rows
    ]


def well_summary(conn: sqlite3.Connection, plate: str) -> list[WellSummary]:
    """One row per well of ``plate`` with its latest aggregated point and onset state."""
    img = {
        r["well"]: r
        for r in conn.execute(
            "SELECT well, count(*) AS n FROM images WHERE plate = ? AND well IS NOT NULL "
            "AND superseded_by IS NULL GROUP BY well",
            (plate,),
        )
    }
    series: dict[str, sqlite3.Row] = {}
    n_points: dict[str, int] = {}
    for r in conn.execute("SELECT * FROM well_series WHERE plate = ? ORDER BY well, seq", (plate,)):
        series[r["well"]] = r  # last one wins
        n_points[r["well"]] = n_points.get(r["well"], 0) + 1
    onset: dict[str, sqlite3.Row] = {
        r["well"]: r
        for r in conn.execute(
            "SELECT * FROM onsets WHERE plate = ? AND reset_at IS NULL ORDER BY episode", (plate,)
        )
    }
    episodes = dict(
        conn.execute("SELECT well, episode FROM well_state WHERE plate = ?", (plate,)).fetchall()
    )
    out = []
    for well in sorted(set(img) | set(series)):
        s = series.get(well)
        o = onset.get(well)
        out.append(
            WellSummary(
                plate=plate,
                well=well,
                n_images=int(img[well]["n"]) if well in img else 0,
                n_timepoints=n_points.get(well, 0),
                last_timepoint=s["timepoint"] if s else None,
                last_time_s=s["time_s"] if s else None,
                last_probability=s["probability"] if s else None,
                last_sd=s["sd"] if s else None,
                last_smoothed=s["smoothed"] if s else None,
                onset=o is not None,
                onset_time_s=o["onset_time_s"] if o else None,
                episode=int(episodes.get(well, 0)),
            )
        )
    return out


def well_series(conn: sqlite3.Connection, plate: str, well: str) -> list[SeriesPoint]:
    """The aggregated per-time-point series of one well, in time order."""
    return [
        SeriesPoint(
            plate=r["plate"],
            well=r["well"],
            seq=int(r["seq"]),
            timepoint=r["timepoint"],
            time_s=r["time_s"],
            probability=float(r["probability"]),
            sd=r["sd"],
            sem=r["sem"],
            n_fields=int(r["n_fields"]),
            n_tiles=int(r["n_tiles"]),
            smoothed=r["smoothed"],
        )
        for r in conn.execute(
            "SELECT * FROM well_series WHERE plate = ? AND well = ? ORDER BY seq", (plate, well)
        )
    ]


def _onset(r: sqlite3.Row) -> OnsetRecord:
    return OnsetRecord(
        id=int(r["id"]),
        plate=r["plate"],
        well=r["well"],
        episode=int(r["episode"]),
        onset_time_s=r["onset_time_s"],
        onset_timepoint=r["onset_timepoint"],
        detected_time_s=r["detected_time_s"],
        detected_at=float(r["detected_at"]),
        probability=r["probability"],
        reset_at=r["reset_at"],
        reset_by=r["reset_by"],
        detected_timepoint=r["detected_timepoint"],
    )


def list_onsets(
    conn: sqlite3.Connection, plate: str | None = None, *, include_reset: bool = True
) -> list[OnsetRecord]:
    """Onset events (newest first), optionally of one plate and without the reset ones."""
    sql = "SELECT * FROM onsets WHERE (? IS NULL OR plate = ?)"
    if not include_reset:
        sql += " AND reset_at IS NULL"
    sql += " ORDER BY detected_at DESC, id DESC"
    return [_onset(r) for r in conn.execute(sql, (plate, plate))]


def _alert(r: sqlite3.Row) -> AlertRecord:
    return AlertRecord(
        id=int(r["id"]),
        kind=r["kind"],
        plate=r["plate"],
        well=r["well"],
        message=r["message"],
        created_at=float(r["created_at"]),
        channel_results=json.loads(r["channel_results"] or "{}"),
        acknowledged_by=r["acknowledged_by"],
        acknowledged_at=r["acknowledged_at"],
    )


def list_alerts(
    conn: sqlite3.Connection, *, limit: int = 100, unacknowledged_only: bool = False
) -> list[AlertRecord]:
    """Alerts, newest first."""
    sql = "SELECT * FROM alerts"
    if unacknowledged_only:
        sql += " WHERE acknowledged_at IS NULL"
    sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
    return [_alert(r) for r in conn.execute(sql, (int(limit),))]


def acknowledge_alert(
    conn: sqlite3.Connection, alert_id: int, *, by: str, now: float | None = None
) -> None:
    """Mark an alert as seen by ``by`` (needs a writable connection)."""
    t = _now(now)

    def do(c: sqlite3.Connection) -> None:
        cur = c.execute(
            "UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ? WHERE id = ?",
            (by, t, alert_id),
        )
        if cur.rowcount == 0:
            raise StoreError(f"{db_path_of(c)}: no alert with id {alert_id}")

    write_transaction(conn, do)


def _image(r: sqlite3.Row) -> ImageRecord:
    keys = r.keys()
    return ImageRecord(
        id=int(r["id"]),
        path=r["path"],
        plate=r["plate"],
        well=r["well"],
        field=r["field"],
        timepoint=r["timepoint"],
        time_s=r["time_s"],
        status=r["status"],
        error=r["error"],
        attempts=int(r["attempts"]),
        size=r["size"],
        mtime_ns=r["mtime_ns"],
        content_hash=r["content_hash"],
        superseded_by=r["superseded_by"],
        updated_at=float(r["updated_at"]),
        probability=r["probability"] if "probability" in keys else None,
        model_hash=r["model_hash"] if "model_hash" in keys else None,
        tile_mean=r["tile_mean"] if "tile_mean" in keys else None,
        tile_sd=r["tile_sd"] if "tile_sd" in keys else None,
        n_tiles=r["n_tiles"] if "n_tiles" in keys else None,
        has_cam=bool(r["has_cam"]) if "has_cam" in keys else False,
    )


# The latest prediction of each image (highest id: the most recent model to score it).
_WITH_PREDICTION = """
SELECT i.*, p.probability, p.model_hash, p.tile_mean, p.tile_sd, p.n_tiles,
       p.cam_png IS NOT NULL AS has_cam
FROM images i
LEFT JOIN predictions p ON p.id = (
    SELECT max(id) FROM predictions WHERE image_id = i.id
)
"""


def images_for_well(
    conn: sqlite3.Connection, plate: str, well: str, *, include_superseded: bool = False
) -> list[ImageRecord]:
    """The images of one well with their latest prediction, by time point then field."""
    sql = _WITH_PREDICTION + " WHERE i.plate = ? AND i.well = ?"
    if not include_superseded:
        sql += " AND i.superseded_by IS NULL"
    sql += " ORDER BY coalesce(i.timepoint, -1), i.time_s, i.field, i.id"
    return [_image(r) for r in conn.execute(sql, (plate, well))]


def recent_images(conn: sqlite3.Connection, *, limit: int = 10) -> list[ImageRecord]:
    """The most recently updated current images (any status), newest first."""
    sql = (
        _WITH_PREDICTION
        + " WHERE i.superseded_by IS NULL ORDER BY i.updated_at DESC, i.id DESC LIMIT ?"
    )
    return [_image(r) for r in conn.execute(sql, (int(limit),))]


def cam_png(conn: sqlite3.Connection, image_id: int) -> bytes | None:
    """The activation-map thumbnail (PNG bytes) of an image's latest prediction, if any."""
    row = conn.execute(
        "SELECT cam_png FROM predictions WHERE image_id = ? ORDER BY id DESC LIMIT 1",
        (image_id,),
    ).fetchone()
    return None if row is None or row[0] is None else bytes(row[0])


def last_heartbeat(conn: sqlite3.Connection) -> Heartbeat | None:
    """The daemon's last heartbeat, or None if it never ran on this database."""
    r = conn.execute("SELECT * FROM heartbeat WHERE id = 1").fetchone()
    if r is None:
        return None
    return Heartbeat(
        pid=r["pid"], host=r["host"], state=r["state"], detail=r["detail"], at=float(r["at"])
    )


def counts(conn: sqlite3.Connection) -> Counts:
    """How many current images are queued, done and failed (and how many were superseded)."""
    by_status = dict(
        conn.execute(
            "SELECT status, count(*) FROM images WHERE superseded_by IS NULL GROUP BY status"
        ).fetchall()
    )
    superseded = conn.execute(
        "SELECT count(*) FROM images WHERE superseded_by IS NOT NULL"
    ).fetchone()[0]
    return Counts(
        queued=int(by_status.get("queued", 0)),
        done=int(by_status.get("done", 0)),
        failed=int(by_status.get("failed", 0)),
        superseded=int(superseded),
    )


def current_model(conn: sqlite3.Connection) -> ModelRecord | None:
    """The most recently seen model."""
    r = conn.execute("SELECT * FROM models ORDER BY last_seen DESC LIMIT 1").fetchone()
    return _model(r) if r else None


def list_models(conn: sqlite3.Connection) -> list[ModelRecord]:
    """Every model the daemon has used, first seen first."""
    return [_model(r) for r in conn.execute("SELECT * FROM models ORDER BY first_seen")]


def _model(r: sqlite3.Row) -> ModelRecord:
    return ModelRecord(
        model_hash=r["model_hash"],
        name=r["name"],
        metadata_json=r["metadata_json"],
        provider=r["provider"],
        first_seen=float(r["first_seen"]),
        last_seen=float(r["last_seen"]),
    )
