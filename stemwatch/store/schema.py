"""The schema: an ordered list of migrations, one version number, each engine's DDL.

``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``: a :class:`Migration` holds
the same change written for SQLite and for PostgreSQL (their DDL differs: ``INTEGER PRIMARY
KEY`` against identity columns, ``BLOB`` against ``BYTEA``, ``REAL`` against ``DOUBLE
PRECISION``, table rebuilds against ``ALTER TABLE``). Each engine applies a migration in one
transaction together with the version bump (SQLite keeps the version in ``PRAGMA
user_version``, PostgreSQL in the table ``stemwatch_schema``), so a crash never leaves a
half-migrated database; see :mod:`~stemwatch.store.sqlite_engine` and
:mod:`~stemwatch.store.postgres_engine`. Released entries are never edited; changes are
appended, each self-contained (a merge that renumbers one moves a single entry).
See docs/database.md for what each table and column means.
"""

from __future__ import annotations

from dataclasses import dataclass

from stemwatch.store.errors import StoreError


@dataclass(frozen=True)
class Migration:
    """One schema version's change, for each engine."""

    sqlite: str
    postgres: str


# ==============================================================================================
# SQLite
# ==============================================================================================

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


# v4 (the facility store, issue 14): every row says which instrument's daemon wrote it, so
# several daemons share one database. Keys that identify something an instrument owns include
# the instrument: an image file (two instruments may write the same path), a well's series,
# onsets and detector state (two instruments may image plates of the same name), an alert's
# dedup key, an instrument condition, the models it used, its heartbeat (one row per
# instrument instead of the single id = 1 row). Rows written before v4 came from the one
# daemon that wrote the heartbeat: they get its host name (what a daemon uses as its
# instrument name by default), or '' when no daemon ever beat.
_LEGACY = "coalesce((SELECT host FROM heartbeat WHERE id = 1), '')"
_V4 = f"""
ALTER TABLE images ADD COLUMN instrument TEXT NOT NULL DEFAULT '';
UPDATE images SET instrument = {_LEGACY};
DROP INDEX images_path;
DROP INDEX images_well;
DROP INDEX images_created;
CREATE INDEX images_path ON images(instrument, path);
CREATE INDEX images_well ON images(instrument, plate, well, timepoint);
CREATE INDEX images_created ON images(instrument, created_at);

CREATE TABLE well_series_v4 (
    instrument   TEXT NOT NULL,
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
    PRIMARY KEY (instrument, model_hash, plate, well, seq)
);
INSERT INTO well_series_v4 SELECT {_LEGACY}, model_hash, plate, well, seq, timepoint, time_s,
    probability, sd, sem, n_fields, n_tiles, smoothed, updated_at FROM well_series;
DROP TABLE well_series;
ALTER TABLE well_series_v4 RENAME TO well_series;
CREATE INDEX well_series_plate ON well_series(instrument, plate, updated_at);

CREATE TABLE onsets_v4 (
    id                  INTEGER PRIMARY KEY,
    instrument          TEXT NOT NULL,
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
    UNIQUE (instrument, model_hash, plate, well, episode)
);
INSERT INTO onsets_v4 SELECT id, {_LEGACY}, model_hash, plate, well, episode, onset_time_s,
    onset_timepoint, detected_time_s, detected_timepoint, time_basis, detected_at, probability,
    reset_at, reset_by FROM onsets;
DROP TABLE onsets;
ALTER TABLE onsets_v4 RENAME TO onsets;
CREATE INDEX onsets_plate ON onsets(instrument, plate, well);

CREATE TABLE well_state_v4 (
    instrument       TEXT NOT NULL,
    plate            TEXT NOT NULL,
    well             TEXT NOT NULL,
    episode          INTEGER NOT NULL DEFAULT 0,
    rearm_after_key  REAL,
    reset_at         REAL,
    reset_by         TEXT,
    PRIMARY KEY (instrument, plate, well)
);
INSERT INTO well_state_v4 SELECT {_LEGACY}, plate, well, episode, rearm_after_key, reset_at,
    reset_by FROM well_state;
DROP TABLE well_state;
ALTER TABLE well_state_v4 RENAME TO well_state;

CREATE TABLE alerts_v4 (
    id               INTEGER PRIMARY KEY,
    instrument       TEXT NOT NULL,
    kind             TEXT NOT NULL,
    plate            TEXT,
    well             TEXT,
    dedup_key        TEXT,
    message          TEXT NOT NULL,
    created_at       REAL NOT NULL,
    channel_results  TEXT NOT NULL DEFAULT '{{}}',
    acknowledged_by  TEXT,
    acknowledged_at  REAL,
    UNIQUE (instrument, dedup_key)
);
INSERT INTO alerts_v4 SELECT id, {_LEGACY}, kind, plate, well, dedup_key, message, created_at,
    channel_results, acknowledged_by, acknowledged_at FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_v4 RENAME TO alerts;
CREATE INDEX alerts_created ON alerts(created_at);

ALTER TABLE alert_deliveries ADD COLUMN instrument TEXT NOT NULL DEFAULT '';
UPDATE alert_deliveries SET instrument = {_LEGACY};
DROP INDEX alert_deliveries_channel;
CREATE INDEX alert_deliveries_channel ON alert_deliveries(instrument, channel, at);

CREATE TABLE alert_conditions_v4 (
    instrument TEXT NOT NULL,
    key        TEXT NOT NULL,
    active     INTEGER NOT NULL,
    since      REAL,
    alert_id   INTEGER REFERENCES alerts(id),
    PRIMARY KEY (instrument, key)
);
INSERT INTO alert_conditions_v4 SELECT {_LEGACY}, key, active, since, alert_id
    FROM alert_conditions;
DROP TABLE alert_conditions;
ALTER TABLE alert_conditions_v4 RENAME TO alert_conditions;

CREATE TABLE models_v4 (
    instrument     TEXT NOT NULL,
    model_hash     TEXT NOT NULL,
    name           TEXT,
    metadata_json  TEXT,
    provider       TEXT,
    first_seen     REAL NOT NULL,
    last_seen      REAL NOT NULL,
    PRIMARY KEY (instrument, model_hash)
);
INSERT INTO models_v4 SELECT {_LEGACY}, model_hash, name, metadata_json, provider, first_seen,
    last_seen FROM models;
DROP TABLE models;
ALTER TABLE models_v4 RENAME TO models;

CREATE TABLE heartbeat_v4 (
    instrument  TEXT PRIMARY KEY,
    pid         INTEGER,
    host        TEXT,
    state       TEXT,
    detail      TEXT,
    at          REAL NOT NULL,
    interval_s  REAL,
    queued      INTEGER
);
INSERT INTO heartbeat_v4 SELECT coalesce(host, ''), pid, host, state, detail, at, interval_s,
    queued FROM heartbeat;
DROP TABLE heartbeat;
ALTER TABLE heartbeat_v4 RENAME TO heartbeat;
"""


# v5 (the dashboard a lab keeps open, issue 13), per instrument like everything since v4:
# - watched_folders: the folders each instrument's daemon watched on this database; the
#   dashboard serves an image file only from under its own instrument's folders (a path in the
#   database is not enough).
# - images.unplaced_reason: why an analysed image got no plate or well (it is listed, not lost).
# - heartbeat_log: every heartbeat's state and queue per instrument, kept for a week (the queue
#   over time); each daemon prunes its own.
# - predictions_created: throughput per hour reads predictions by creation time.
# Nothing to backfill: before v5 no folder, reason or heartbeat history was recorded.
_V5 = """
CREATE TABLE watched_folders (
    instrument  TEXT NOT NULL,
    path        TEXT NOT NULL,
    first_seen  REAL NOT NULL,
    last_seen   REAL NOT NULL,
    PRIMARY KEY (instrument, path)
);
ALTER TABLE images ADD COLUMN unplaced_reason TEXT;
CREATE TABLE heartbeat_log (
    instrument  TEXT NOT NULL,
    at          REAL NOT NULL,
    state       TEXT,
    queued      INTEGER
);
CREATE INDEX heartbeat_log_at ON heartbeat_log(instrument, at);
CREATE INDEX predictions_created ON predictions(created_at);
"""


# ==============================================================================================
# PostgreSQL: the same versions. Integers are BIGINT (mtime_ns and sizes overflow INTEGER),
# floats DOUBLE PRECISION, ids identity columns, bytes BYTEA. Constraints are named where a
# later version drops them. No PostgreSQL database predates v4, but every new one runs v1-v5
# in order, so each entry is the real change at that version.
# ==============================================================================================

_PG_V1 = """
CREATE TABLE images (
    id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    path            TEXT NOT NULL,
    size            BIGINT,
    mtime_ns        BIGINT,
    content_hash    TEXT,
    plate           TEXT,
    well            TEXT,
    field           BIGINT,
    timepoint       BIGINT,
    time_s          DOUBLE PRECISION,
    location_source TEXT,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'done', 'failed')),
    error           TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    superseded_by   BIGINT REFERENCES images(id),
    created_at      DOUBLE PRECISION NOT NULL,
    updated_at      DOUBLE PRECISION NOT NULL
);
CREATE INDEX images_path ON images(path);
CREATE INDEX images_well ON images(plate, well, timepoint);
CREATE INDEX images_status ON images(status);
CREATE INDEX images_updated ON images(updated_at);

CREATE TABLE predictions (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    image_id     BIGINT NOT NULL REFERENCES images(id),
    model_hash   TEXT NOT NULL,
    probability  DOUBLE PRECISION NOT NULL,
    tile_mean    DOUBLE PRECISION,
    tile_sd      DOUBLE PRECISION,
    n_tiles      BIGINT,
    cam_png      BYTEA,
    created_at   DOUBLE PRECISION NOT NULL,
    CONSTRAINT predictions_image_model UNIQUE (image_id, model_hash)
);

CREATE TABLE well_series (
    plate        TEXT NOT NULL,
    well         TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    timepoint    BIGINT,
    time_s       DOUBLE PRECISION,
    probability  DOUBLE PRECISION NOT NULL,
    sd           DOUBLE PRECISION,
    sem          DOUBLE PRECISION,
    n_fields     BIGINT NOT NULL,
    n_tiles      BIGINT NOT NULL,
    smoothed     DOUBLE PRECISION,
    model_hash   TEXT,
    updated_at   DOUBLE PRECISION NOT NULL,
    CONSTRAINT well_series_pkey PRIMARY KEY (plate, well, seq)
);

CREATE TABLE onsets (
    id               BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    plate            TEXT NOT NULL,
    well             TEXT NOT NULL,
    episode          BIGINT NOT NULL,
    onset_time_s     DOUBLE PRECISION,
    onset_timepoint  BIGINT,
    detected_time_s  DOUBLE PRECISION,
    detected_at      DOUBLE PRECISION NOT NULL,
    probability      DOUBLE PRECISION,
    reset_at         DOUBLE PRECISION,
    reset_by         TEXT,
    CONSTRAINT onsets_episode UNIQUE (plate, well, episode)
);

CREATE TABLE well_state (
    plate            TEXT NOT NULL,
    well             TEXT NOT NULL,
    episode          BIGINT NOT NULL DEFAULT 0,
    rearm_after_key  DOUBLE PRECISION,
    reset_at         DOUBLE PRECISION,
    reset_by         TEXT,
    CONSTRAINT well_state_pkey PRIMARY KEY (plate, well)
);

CREATE TABLE alerts (
    id               BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind             TEXT NOT NULL,
    plate            TEXT,
    well             TEXT,
    dedup_key        TEXT CONSTRAINT alerts_dedup_key UNIQUE,
    message          TEXT NOT NULL,
    created_at       DOUBLE PRECISION NOT NULL,
    channel_results  TEXT NOT NULL DEFAULT '{}',
    acknowledged_by  TEXT,
    acknowledged_at  DOUBLE PRECISION
);
CREATE INDEX alerts_created ON alerts(created_at);

CREATE TABLE alert_deliveries (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    alert_id   BIGINT REFERENCES alerts(id),
    channel    TEXT NOT NULL,
    at         DOUBLE PRECISION NOT NULL,
    result     TEXT NOT NULL
);
CREATE INDEX alert_deliveries_channel ON alert_deliveries(channel, at);

CREATE TABLE alert_conditions (
    key        TEXT CONSTRAINT alert_conditions_pkey PRIMARY KEY,
    active     BIGINT NOT NULL,
    since      DOUBLE PRECISION,
    alert_id   BIGINT REFERENCES alerts(id)
);

CREATE TABLE models (
    model_hash     TEXT CONSTRAINT models_pkey PRIMARY KEY,
    name           TEXT,
    metadata_json  TEXT,
    provider       TEXT,
    first_seen     DOUBLE PRECISION NOT NULL,
    last_seen      DOUBLE PRECISION NOT NULL
);

CREATE TABLE heartbeat (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    pid     BIGINT,
    host    TEXT,
    state   TEXT,
    detail  TEXT,
    at      DOUBLE PRECISION NOT NULL
);
"""

_PG_V2 = """
ALTER TABLE onsets ADD COLUMN detected_timepoint BIGINT;
CREATE INDEX images_created ON images(created_at);
"""

_PG_V3 = """
ALTER TABLE images ADD COLUMN time_basis TEXT;
UPDATE images SET time_basis = CASE
    WHEN time_s IS NULL THEN NULL
    WHEN location_source LIKE '%mtime%' THEN 'mtime'
    WHEN time_s >= 1e8 THEN 'epoch'
    ELSE 'elapsed'
END;

UPDATE well_series s SET model_hash = coalesce((
        SELECT p.model_hash FROM predictions p JOIN images i ON i.id = p.image_id
        WHERE i.plate = s.plate AND i.well = s.well ORDER BY p.id DESC LIMIT 1
    ), '')
WHERE s.model_hash IS NULL;
ALTER TABLE well_series ALTER COLUMN model_hash SET NOT NULL,
    DROP CONSTRAINT well_series_pkey,
    ADD CONSTRAINT well_series_pkey PRIMARY KEY (model_hash, plate, well, seq);
CREATE INDEX well_series_plate ON well_series(plate, updated_at);

ALTER TABLE onsets ADD COLUMN model_hash TEXT, ADD COLUMN time_basis TEXT;
UPDATE onsets o SET
    model_hash = coalesce((
        SELECT s.model_hash FROM well_series s
        WHERE s.plate = o.plate AND s.well = o.well LIMIT 1
    ), ''),
    time_basis = (
        SELECT i.time_basis FROM images i
        WHERE i.plate = o.plate AND i.well = o.well AND i.time_basis IS NOT NULL
        ORDER BY i.id DESC LIMIT 1
    );
ALTER TABLE onsets ALTER COLUMN model_hash SET NOT NULL,
    DROP CONSTRAINT onsets_episode,
    ADD CONSTRAINT onsets_episode UNIQUE (model_hash, plate, well, episode);
CREATE INDEX onsets_plate ON onsets(plate, well);

ALTER TABLE heartbeat ADD COLUMN interval_s DOUBLE PRECISION, ADD COLUMN queued BIGINT;
"""

_PG_V4 = f"""
ALTER TABLE images ADD COLUMN instrument TEXT NOT NULL DEFAULT '';
UPDATE images SET instrument = {_LEGACY};
DROP INDEX images_path;
DROP INDEX images_well;
DROP INDEX images_created;
CREATE INDEX images_path ON images(instrument, path);
CREATE INDEX images_well ON images(instrument, plate, well, timepoint);
CREATE INDEX images_created ON images(instrument, created_at);

ALTER TABLE well_series ADD COLUMN instrument TEXT NOT NULL DEFAULT '';
UPDATE well_series SET instrument = {_LEGACY};
ALTER TABLE well_series DROP CONSTRAINT well_series_pkey,
    ADD CONSTRAINT well_series_pkey PRIMARY KEY (instrument, model_hash, plate, well, seq);
DROP INDEX well_series_plate;
CREATE INDEX well_series_plate ON well_series(instrument, plate, updated_at);

ALTER TABLE onsets ADD COLUMN instrument TEXT NOT NULL DEFAULT '';
UPDATE onsets SET instrument = {_LEGACY};
ALTER TABLE onsets DROP CONSTRAINT onsets_episode,
    ADD CONSTRAINT onsets_episode UNIQUE (instrument, model_hash, plate, well, episode);
DROP INDEX onsets_plate;
CREATE INDEX onsets_plate ON onsets(instrument, plate, well);

ALTER TABLE well_state ADD COLUMN instrument TEXT NOT NULL DEFAULT '';
UPDATE well_state SET instrument = {_LEGACY};
ALTER TABLE well_state DROP CONSTRAINT well_state_pkey,
    ADD CONSTRAINT well_state_pkey PRIMARY KEY (instrument, plate, well);

ALTER TABLE alerts ADD COLUMN instrument TEXT NOT NULL DEFAULT '';
UPDATE alerts SET instrument = {_LEGACY};
ALTER TABLE alerts DROP CONSTRAINT alerts_dedup_key,
    ADD CONSTRAINT alerts_dedup_key UNIQUE (instrument, dedup_key);

ALTER TABLE alert_deliveries ADD COLUMN instrument TEXT NOT NULL DEFAULT '';
UPDATE alert_deliveries SET instrument = {_LEGACY};
DROP INDEX alert_deliveries_channel;
CREATE INDEX alert_deliveries_channel ON alert_deliveries(instrument, channel, at);

ALTER TABLE alert_conditions ADD COLUMN instrument TEXT NOT NULL DEFAULT '';
UPDATE alert_conditions SET instrument = {_LEGACY};
ALTER TABLE alert_conditions DROP CONSTRAINT alert_conditions_pkey,
    ADD CONSTRAINT alert_conditions_pkey PRIMARY KEY (instrument, key);

ALTER TABLE models ADD COLUMN instrument TEXT NOT NULL DEFAULT '';
UPDATE models SET instrument = {_LEGACY};
ALTER TABLE models DROP CONSTRAINT models_pkey,
    ADD CONSTRAINT models_pkey PRIMARY KEY (instrument, model_hash);

ALTER TABLE heartbeat ADD COLUMN instrument TEXT;
UPDATE heartbeat SET instrument = coalesce(host, '');
ALTER TABLE heartbeat DROP COLUMN id, ALTER COLUMN instrument SET NOT NULL,
    ADD CONSTRAINT heartbeat_pkey PRIMARY KEY (instrument);
"""

_PG_V5 = """
CREATE TABLE watched_folders (
    instrument  TEXT NOT NULL,
    path        TEXT NOT NULL,
    first_seen  DOUBLE PRECISION NOT NULL,
    last_seen   DOUBLE PRECISION NOT NULL,
    CONSTRAINT watched_folders_pkey PRIMARY KEY (instrument, path)
);
ALTER TABLE images ADD COLUMN unplaced_reason TEXT;
CREATE TABLE heartbeat_log (
    instrument  TEXT NOT NULL,
    at          DOUBLE PRECISION NOT NULL,
    state       TEXT,
    queued      BIGINT
);
CREATE INDEX heartbeat_log_at ON heartbeat_log(instrument, at);
CREATE INDEX predictions_created ON predictions(created_at);
"""


# v6 (ingest hardening, issue 11):
# - images.ctime_ns: the inode change time of the version recorded. A rewrite that keeps the
#   size and the mtime (a re-export that preserves the acquisition time stamp) still changes
#   the ctime, so the file is read again and its content hash decides. NULL for rows written
#   before v6: size and mtime decide for those, as before.
# - images.retry_at: a failed version whose failure was transient (unreadable for a while) is
#   read again after this wall-clock time, even unchanged; NULL: retried only once it changes.
# - images.channel / channel_name / z: where in the acquisition the image is, besides the
#   well, field and time point (frames of two channels no longer share one location).
# - images_hash: finds the record of a file that was moved or renamed after analysis.
# - skipped_files: files deliberately not analysed (analysis outputs such as masks, formats
#   that are not read, channels not selected), one row per instrument and path with the
#   reason, so a restart does not reconsider them and a user can see why.
_V6 = """
ALTER TABLE images ADD COLUMN ctime_ns INTEGER;
ALTER TABLE images ADD COLUMN retry_at REAL;
ALTER TABLE images ADD COLUMN channel INTEGER;
ALTER TABLE images ADD COLUMN channel_name TEXT;
ALTER TABLE images ADD COLUMN z INTEGER;
CREATE INDEX images_hash ON images(instrument, content_hash);

CREATE TABLE skipped_files (
    instrument    TEXT NOT NULL,
    path          TEXT NOT NULL,
    size          INTEGER,
    mtime_ns      INTEGER,
    ctime_ns      INTEGER,
    kind          TEXT NOT NULL,
    reason        TEXT NOT NULL,
    plate         TEXT,
    well          TEXT,
    field         INTEGER,
    timepoint     INTEGER,
    channel       INTEGER,
    channel_name  TEXT,
    z             INTEGER,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    PRIMARY KEY (instrument, path)
);
CREATE INDEX skipped_files_kind ON skipped_files(instrument, kind, updated_at);
"""

_PG_V6 = """
ALTER TABLE images ADD COLUMN ctime_ns BIGINT, ADD COLUMN retry_at DOUBLE PRECISION,
    ADD COLUMN channel BIGINT, ADD COLUMN channel_name TEXT, ADD COLUMN z BIGINT;
CREATE INDEX images_hash ON images(instrument, content_hash);

CREATE TABLE skipped_files (
    instrument    TEXT NOT NULL,
    path          TEXT NOT NULL,
    size          BIGINT,
    mtime_ns      BIGINT,
    ctime_ns      BIGINT,
    kind          TEXT NOT NULL,
    reason        TEXT NOT NULL,
    plate         TEXT,
    well          TEXT,
    field         BIGINT,
    timepoint     BIGINT,
    channel       BIGINT,
    channel_name  TEXT,
    z             BIGINT,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL,
    CONSTRAINT skipped_files_pkey PRIMARY KEY (instrument, path)
);
CREATE INDEX skipped_files_kind ON skipped_files(instrument, kind, updated_at);
"""


# v7 (a lab's own model, issue 10), self-contained:
# - plate maps, append-only: each import of a plate's map is a row of plate_map_imports with
#   its wells in plate_map_wells; a plate's map is its latest import.
# - labels from the lab, append-only: a label never changes except for its markers
#   (superseded_by: a later active label covers its whole window; undone_at/undone_by: the
#   user took it back). A label covers the well's images with from_time_s <= time_s <=
#   to_time_s (NULL: open on that side) on the well's clock.
# - model_switches: when each instrument's daemon took which model into use and why (start,
#   SIGHUP, the model file replaced). An instrument's current model is its latest switch, so
#   a model that only re-analysed plates never becomes the default view. Each instrument's
#   model seen last before v7 becomes its first switch.
# - reanalyses: each `stemwatch reanalyse` run: its model (name and metadata, so the model is
#   known without being a daemon's: `models` stays the daemons' models), scope, who, when,
#   and how far it got.
# - predictions by model, for re-analysis ("which images has this model not scored yet?")
#   and comparison.
_MIGRATED_SWITCHES = """
INSERT INTO model_switches (instrument, at, model_hash, previous_hash, reason, detail)
SELECT m.instrument, m.last_seen, m.model_hash, NULL, 'migrated',
    'the model in use before schema v7'
FROM models m
WHERE m.last_seen = (SELECT max(n.last_seen) FROM models n WHERE n.instrument = m.instrument);
"""
_V7 = (
    """
CREATE TABLE plate_map_imports (
    id           INTEGER PRIMARY KEY,
    instrument   TEXT NOT NULL,
    plate        TEXT NOT NULL,
    source       TEXT,
    imported_by  TEXT NOT NULL,
    imported_at  REAL NOT NULL
);
CREATE INDEX plate_map_imports_plate ON plate_map_imports(instrument, plate, id);

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
    instrument        TEXT NOT NULL,
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
CREATE INDEX labels_well ON labels(instrument, plate, well);
CREATE INDEX labels_alert ON labels(alert_id);

CREATE TABLE model_switches (
    id             INTEGER PRIMARY KEY,
    instrument     TEXT NOT NULL,
    at             REAL NOT NULL,
    model_hash     TEXT NOT NULL,
    previous_hash  TEXT,
    reason         TEXT NOT NULL,
    detail         TEXT
);
CREATE INDEX model_switches_instrument ON model_switches(instrument, at);

CREATE TABLE reanalyses (
    id             INTEGER PRIMARY KEY,
    model_hash     TEXT NOT NULL,
    name           TEXT,
    metadata_json  TEXT,
    plates         TEXT,
    instrument     TEXT,
    started_by     TEXT NOT NULL,
    started_at     REAL NOT NULL,
    finished_at    REAL,
    planned        INTEGER,
    scored         INTEGER,
    unscorable     INTEGER,
    interrupted    INTEGER
);
CREATE INDEX reanalyses_model ON reanalyses(model_hash, started_at);
"""
    + _MIGRATED_SWITCHES
    + """
CREATE INDEX predictions_model ON predictions(model_hash, image_id);
"""
)

_PG_V7 = (
    """
CREATE TABLE plate_map_imports (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    instrument   TEXT NOT NULL,
    plate        TEXT NOT NULL,
    source       TEXT,
    imported_by  TEXT NOT NULL,
    imported_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX plate_map_imports_plate ON plate_map_imports(instrument, plate, id);

CREATE TABLE plate_map_wells (
    import_id        BIGINT NOT NULL REFERENCES plate_map_imports(id),
    well             TEXT NOT NULL,
    condition        TEXT,
    treatment        TEXT,
    induction_s      DOUBLE PRECISION,
    induction_basis  TEXT,
    role             TEXT,
    notes            TEXT,
    attributes_json  TEXT NOT NULL DEFAULT '{}',
    CONSTRAINT plate_map_wells_pkey PRIMARY KEY (import_id, well)
);

CREATE TABLE labels (
    id                BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    instrument        TEXT NOT NULL,
    plate             TEXT NOT NULL,
    well              TEXT NOT NULL,
    label             TEXT NOT NULL
                      CHECK (label IN ('differentiated', 'undifferentiated', 'excluded')),
    from_time_s       DOUBLE PRECISION,
    to_time_s         DOUBLE PRECISION,
    time_basis        TEXT,
    source            TEXT NOT NULL,
    alert_id          BIGINT REFERENCES alerts(id),
    onset_id          BIGINT,
    marker            TEXT,
    stained_fraction  DOUBLE PRECISION,
    note              TEXT,
    created_by        TEXT NOT NULL,
    created_at        DOUBLE PRECISION NOT NULL,
    superseded_by     BIGINT REFERENCES labels(id),
    undone_by         TEXT,
    undone_at         DOUBLE PRECISION
);
CREATE INDEX labels_well ON labels(instrument, plate, well);
CREATE INDEX labels_alert ON labels(alert_id);

CREATE TABLE model_switches (
    id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    instrument     TEXT NOT NULL,
    at             DOUBLE PRECISION NOT NULL,
    model_hash     TEXT NOT NULL,
    previous_hash  TEXT,
    reason         TEXT NOT NULL,
    detail         TEXT
);
CREATE INDEX model_switches_instrument ON model_switches(instrument, at);

CREATE TABLE reanalyses (
    id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    model_hash     TEXT NOT NULL,
    name           TEXT,
    metadata_json  TEXT,
    plates         TEXT,
    instrument     TEXT,
    started_by     TEXT NOT NULL,
    started_at     DOUBLE PRECISION NOT NULL,
    finished_at    DOUBLE PRECISION,
    planned        BIGINT,
    scored         BIGINT,
    unscorable     BIGINT,
    interrupted    BIGINT
);
CREATE INDEX reanalyses_model ON reanalyses(model_hash, started_at);
"""
    + _MIGRATED_SWITCHES
    + """
CREATE INDEX predictions_model ON predictions(model_hash, image_id);
"""
)


# v8 (the domain check, issue 9): images.quality says why a frame was not analysed (blank,
# saturated, all-NaN: never scored as cells, no prediction); predictions carry the image's
# domain score (distance from the model's training domain over its threshold: above 1 is out
# of the domain) and whether it was out of the domain (NULL: the model has no domain
# description). Out-of-domain predictions stay stored but do not enter the well's series.
# Nothing to backfill: rows written before v8 were never checked (all NULL).
_V8 = """
ALTER TABLE images ADD COLUMN quality TEXT;
ALTER TABLE predictions ADD COLUMN domain_score REAL;
ALTER TABLE predictions ADD COLUMN out_of_domain INTEGER;
"""

_PG_V8 = """
ALTER TABLE images ADD COLUMN quality TEXT;
ALTER TABLE predictions ADD COLUMN domain_score DOUBLE PRECISION,
    ADD COLUMN out_of_domain BIGINT;
"""

# v9 (issue 13, the dashboard's first render on 384 wells x 4 fields x 200 time points): indexes
# for what every render of the plate page asks. The plate list reads one covering index
# instead of every image row (0.37 -> 0.08 s CPU on 307,200 images); the wells' image counts
# read the well index alone (it gains the two columns they filter on); the domain check's
# flagged images are found through two partial indexes that hold only flagged rows (0.8 s
# -> ~0 on a plate without any: it used to score every image).
_V9 = """
CREATE INDEX images_plates ON images(instrument, plate, time_basis, superseded_by, status,
    time_s, updated_at, created_at);
DROP INDEX images_well;
CREATE INDEX images_well ON images(instrument, plate, well, timepoint, superseded_by, status);
CREATE INDEX images_quality ON images(instrument, plate) WHERE quality IS NOT NULL;
CREATE INDEX predictions_out_of_domain ON predictions(image_id) WHERE out_of_domain = 1;
"""
_PG_V9 = _V9

# Ordered: MIGRATIONS[i] takes the schema from version i to version i + 1. Never edit a
# released entry; append a new one (with both engines' DDL: the PostgreSQL-parametrised store
# tests run every entry on a real server).
MIGRATIONS: list[Migration] = [
    Migration(sqlite=_V1, postgres=_PG_V1),
    Migration(sqlite=_V2, postgres=_PG_V2),
    Migration(sqlite=_V3, postgres=_PG_V3),
    Migration(sqlite=_V4, postgres=_PG_V4),
    Migration(sqlite=_V5, postgres=_PG_V5),
    Migration(sqlite=_V6, postgres=_PG_V6),
    Migration(sqlite=_V7, postgres=_PG_V7),
    Migration(sqlite=_V8, postgres=_PG_V8),
    Migration(sqlite=_V9, postgres=_PG_V9),
]
SCHEMA_VERSION = len(MIGRATIONS)


def check_not_newer(version: int, source: str) -> None:
    """A database from a newer stemwatch is refused (its schema is unknown here)."""
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{source}: schema version {version} is newer than this stemwatch understands "
            f"(up to {SCHEMA_VERSION}); upgrade stemwatch, or point --db at another database"
        )


def check_readable(version: int, source: str) -> None:
    """A read-only open needs the current schema: it cannot migrate."""
    check_not_newer(version, source)
    if version < SCHEMA_VERSION:
        raise StoreError(
            f"{source}: schema version {version}, expected {SCHEMA_VERSION}; "
            "run the daemon once to migrate it (a read-only open cannot)"
            if version
            else f"{source}: not a stemwatch database (no schema); check the --db path"
        )
