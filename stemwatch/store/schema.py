"""The schema: an ordered list of migrations, applied forward by :func:`migrate`.

The version lives in ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes a database from version
``i`` to ``i + 1``; each runs in one transaction together with the version bump, so a crash
never leaves a half-migrated file. Released entries are never edited; changes are appended.
See docs/database.md for what each table and column means.
"""

from __future__ import annotations

import logging
import sqlite3

from stemwatch.store.errors import StoreError

log = logging.getLogger(__name__)

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

# v3 (one owner for SQL, issue 12):
# - images.time_basis: how platemeta resolved time_s (elapsed / epoch / mtime), so readers no
#   longer guess it from the magnitude. Rows written before v3 are backfilled once, from the
#   only evidence they carry: an "mtime" location source, else the magnitude (>= 1e8 s, about
#   three years, is a wall-clock time).
# - well_series and onsets are keyed by model (re-analysis with a second model must not
#   overwrite the daemon's series); old rows get the model of the well's latest prediction.
#   onsets remember the time basis of their times.
# - heartbeat.interval_s (the daemon's own heartbeat interval: readers judge liveness without
#   its config) and heartbeat.queued (images found but not yet analysed: the daemon's queue).
_V3 = """
ALTER TABLE images ADD COLUMN time_basis TEXT;
UPDATE images SET time_basis = CASE
    WHEN time_s IS NULL THEN NULL
    WHEN location_source LIKE '%mtime%' THEN 'mtime'
    WHEN time_s >= 1e8 THEN 'epoch'
    ELSE 'elapsed'
END;

CREATE TABLE well_series_v3 (
    model_hash   TEXT NOT NULL,
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
    updated_at   REAL NOT NULL,
    PRIMARY KEY (model_hash, plate, well, seq)
);
INSERT INTO well_series_v3 (model_hash, plate, well, seq, timepoint, time_s, probability, sd,
    sem, n_fields, n_tiles, smoothed, updated_at)
SELECT coalesce(s.model_hash, (
        SELECT p.model_hash FROM predictions p JOIN images i ON i.id = p.image_id
        WHERE i.plate = s.plate AND i.well = s.well ORDER BY p.id DESC LIMIT 1
    ), ''),
    s.plate, s.well, s.seq, s.timepoint, s.time_s, s.probability, s.sd, s.sem, s.n_fields,
    s.n_tiles, s.smoothed, s.updated_at
FROM well_series s;
DROP TABLE well_series;
ALTER TABLE well_series_v3 RENAME TO well_series;
CREATE INDEX well_series_plate ON well_series(plate, updated_at);

CREATE TABLE onsets_v3 (
    id                  INTEGER PRIMARY KEY,
    model_hash          TEXT NOT NULL,
    plate               TEXT NOT NULL,
    well                TEXT NOT NULL,
    episode             INTEGER NOT NULL,
    onset_time_s        REAL,
    onset_timepoint     INTEGER,
    detected_time_s     REAL,
    detected_timepoint  INTEGER,
    time_basis          TEXT,
    detected_at         REAL NOT NULL,
    probability         REAL,
    reset_at            REAL,
    reset_by            TEXT,
    UNIQUE (model_hash, plate, well, episode)
);
INSERT INTO onsets_v3 (id, model_hash, plate, well, episode, onset_time_s, onset_timepoint,
    detected_time_s, detected_timepoint, time_basis, detected_at, probability, reset_at,
    reset_by)
SELECT o.id, coalesce((
        SELECT s.model_hash FROM well_series s
        WHERE s.plate = o.plate AND s.well = o.well LIMIT 1
    ), ''),
    o.plate, o.well, o.episode, o.onset_time_s, o.onset_timepoint, o.detected_time_s,
    o.detected_timepoint, (
        SELECT i.time_basis FROM images i
        WHERE i.plate = o.plate AND i.well = o.well AND i.time_basis IS NOT NULL
        ORDER BY i.id DESC LIMIT 1
    ),
    o.detected_at, o.probability, o.reset_at, o.reset_by
FROM onsets o;
DROP TABLE onsets;
ALTER TABLE onsets_v3 RENAME TO onsets;
CREATE INDEX onsets_plate ON onsets(plate, well);

ALTER TABLE heartbeat ADD COLUMN interval_s REAL;
ALTER TABLE heartbeat ADD COLUMN queued INTEGER;
"""

# v4 (a lab's own model, issue 10), self-contained:
# - plate maps, append-only: each import of a plate's map is a row of plate_map_imports with
#   its wells in plate_map_wells; a plate's map is its latest import.
# - labels from the lab, append-only: a label never changes except for its markers
#   (superseded_by: a later active label covers its whole window; undone_at/undone_by: the
#   user took it back). A label covers the well's images with from_time_s <= time_s <=
#   to_time_s (NULL: open on that side) in the well's time basis.
# - model_switches: when the daemon took which model into use and why (start, SIGHUP, the
#   model file replaced). The daemon's current model is the latest switch, so a model that
#   only re-analysed plates never becomes the default view. The current model of a database
#   written before v4 becomes its first switch.
# - predictions by model, for re-analysis ("which images has this model not scored yet?")
#   and comparison.
_V4 = """
CREATE TABLE plate_map_imports (
    id           INTEGER PRIMARY KEY,
    plate        TEXT NOT NULL,
    source       TEXT,
    imported_by  TEXT NOT NULL,
    imported_at  REAL NOT NULL
);
CREATE INDEX plate_map_imports_plate ON plate_map_imports(plate, id);

CREATE TABLE plate_map_wells (
    import_id        INTEGER NOT NULL REFERENCES plate_map_imports(id),
    well             TEXT NOT NULL,
    condition        TEXT,
    treatment        TEXT,
    induction_s      REAL,
    induction_basis  TEXT,
    role             TEXT,
    notes            TEXT,
    attributes_json  TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (import_id, well)
);

CREATE TABLE labels (
    id                INTEGER PRIMARY KEY,
    plate             TEXT NOT NULL,
    well              TEXT NOT NULL,
    label             TEXT NOT NULL
                      CHECK (label IN ('differentiated', 'undifferentiated', 'excluded')),
    from_time_s       REAL,
    to_time_s         REAL,
    time_basis        TEXT,
    source            TEXT NOT NULL,
    alert_id          INTEGER REFERENCES alerts(id),
    onset_id          INTEGER,
    marker            TEXT,
    stained_fraction  REAL,
    note              TEXT,
    created_by        TEXT NOT NULL,
    created_at        REAL NOT NULL,
    superseded_by     INTEGER REFERENCES labels(id),
    undone_by         TEXT,
    undone_at         REAL
);
CREATE INDEX labels_well ON labels(plate, well);
CREATE INDEX labels_alert ON labels(alert_id);

CREATE TABLE model_switches (
    id             INTEGER PRIMARY KEY,
    at             REAL NOT NULL,
    model_hash     TEXT NOT NULL,
    previous_hash  TEXT,
    reason         TEXT NOT NULL,
    detail         TEXT
);
INSERT INTO model_switches (at, model_hash, previous_hash, reason, detail)
SELECT last_seen, model_hash, NULL, 'migrated', 'the model in use before schema v4'
FROM models ORDER BY last_seen DESC LIMIT 1;

CREATE INDEX predictions_model ON predictions(model_hash, image_id);
"""

# Ordered: MIGRATIONS[i] takes the schema from version i to version i + 1. Never edit a
# released entry; append a new one.
MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version stored in the database (``PRAGMA user_version``)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, source: str = "database") -> int:
    """Apply the pending migrations in order; return the resulting version.

    Raises :class:`~stemwatch.store.StoreError` for a database written by a newer stemwatch.
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
