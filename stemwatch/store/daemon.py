"""The daemons' own rows: the models each used, the folders each watched, each one's heartbeat
and its log.

Several daemons may share a database (one per instrument): each registers its models, records
its folders and beats under its instrument name (:attr:`Database.writer
<stemwatch.store.database.Database.writer>`); readers ask about one instrument or list all.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from stemwatch.store.connection import Database, snapshot, write
from stemwatch.store.instruments import own
from stemwatch.store.models import daemon_model_hash
from stemwatch.store.records import Heartbeat, HeartbeatSample, ModelRecord, WatchedFolder

HEARTBEAT_LOG_DAYS = 8.0  # how long the heartbeat log (queue over time) is kept


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def register_model(
    db: Database,
    *,
    model_hash: str,
    name: str,
    metadata_json: str,
    provider: str,
    now: float | None = None,
) -> None:
    """Record the model this instrument uses (first sighting kept; provider and last sighting
    updated)."""
    t = _now(now)
    write(
        db,
        lambda db: db.execute(
            "INSERT INTO models (instrument, model_hash, name, metadata_json, provider, "
            "first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (instrument, model_hash) DO UPDATE SET "
            "name = excluded.name, metadata_json = excluded.metadata_json, "
            "provider = excluded.provider, last_seen = excluded.last_seen",
            (db.writer, model_hash, name, metadata_json, provider, t, t),
        ),
    )


def _model(r: Any) -> ModelRecord:
    return ModelRecord(
        model_hash=r["model_hash"],
        name=r["name"],
        metadata_json=r["metadata_json"],
        provider=r["provider"],
        first_seen=float(r["first_seen"]),
        last_seen=float(r["last_seen"]),
        instrument=r["instrument"],
    )


def _where(instrument: str | None) -> tuple[str, tuple[str, ...]]:
    return ("", ()) if instrument is None else (" WHERE instrument = ?", (instrument,))


def current_model(db: Database, *, instrument: str | None = None) -> ModelRecord | None:
    """The instrument's daemon's current model: the model of its latest switch
    (:func:`stemwatch.store.models.daemon_model_hash`; ``instrument``, else the handle's; a
    facility handle: the latest switch of any instrument)."""
    who = own(db, instrument)
    with snapshot(db):
        h = daemon_model_hash(db, instrument=who)
        if h is None:
            return None
        where, params = _where(who)
        where = f"{where} AND" if where else " WHERE"
        r = db.row(
            f"SELECT * FROM models{where} model_hash = ? ORDER BY last_seen DESC LIMIT 1",
            (*params, h),
        )
    return _model(r) if r else None


def list_models(db: Database, *, instrument: str | None = None) -> list[ModelRecord]:
    """Every model the daemons (or ``instrument``'s) have used and re-analyses registered,
    first seen first."""
    where, params = _where(instrument)
    return [
        _model(r)
        for r in db.rows(f"SELECT * FROM models{where} ORDER BY first_seen, instrument", params)
    ]


def beat(
    db: Database,
    *,
    state: str,
    detail: str = "",
    queued: int | None = None,
    interval_s: float | None = None,
    now: float | None = None,
) -> None:
    """The daemon's heartbeat: one row per instrument, overwritten.

    ``queued``: images it has found and not yet analysed; ``interval_s``: how often it beats,
    so readers can tell when it stopped (:meth:`Heartbeat.liveness`).
    Each beat is also logged (state and queue, kept :data:`HEARTBEAT_LOG_DAYS` days) for
    :func:`heartbeat_history`.
    """
    t = _now(now)

    def do(db: Database) -> None:
        db.execute(
            "INSERT INTO heartbeat (instrument, pid, host, state, detail, at, interval_s, "
            "queued) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (instrument) DO UPDATE SET pid = excluded.pid, host = excluded.host, "
            "state = excluded.state, detail = excluded.detail, at = excluded.at, "
            "interval_s = excluded.interval_s, queued = excluded.queued",
            (db.writer, os.getpid(), socket.gethostname(), state, detail, t, interval_s, queued),
        )
        db.execute(
            "INSERT INTO heartbeat_log (instrument, at, state, queued) VALUES (?, ?, ?, ?)",
            (db.writer, t, state, queued),
        )
        db.execute(  # each daemon prunes its own log (the index leads with the instrument)
            "DELETE FROM heartbeat_log WHERE instrument = ? AND at < ?",
            (db.writer, t - HEARTBEAT_LOG_DAYS * 86400.0),
        )

    write(db, do)


def last_heartbeat(db: Database, *, instrument: str | None = None) -> Heartbeat | None:
    """The instrument's daemon's last heartbeat (``instrument``, else the handle's; a facility
    handle: the most recent of all), or None if it never ran on this database."""
    where, params = _where(own(db, instrument))
    r = db.row(f"SELECT * FROM heartbeat{where} ORDER BY at DESC LIMIT 1", params)
    return None if r is None else _heartbeat(r)


def heartbeats(db: Database) -> list[Heartbeat]:
    """Every instrument's daemon's last heartbeat, by instrument."""
    return [_heartbeat(r) for r in db.rows("SELECT * FROM heartbeat ORDER BY instrument")]


def _heartbeat(r: Any) -> Heartbeat:
    return Heartbeat(
        pid=r["pid"],
        host=r["host"],
        state=r["state"],
        detail=r["detail"],
        at=float(r["at"]),
        interval_s=r["interval_s"],
        queued=r["queued"],
        instrument=r["instrument"],
    )


def heartbeat_history(
    db: Database, *, since: float, instrument: str | None = None
) -> list[HeartbeatSample]:
    """The instrument's daemon's heartbeats since ``since`` (state and queue), oldest first
    (``instrument``, else the handle's; a facility handle: every instrument's, each sample
    naming its instrument)."""
    sql = "SELECT instrument, at, state, queued FROM heartbeat_log WHERE at >= ?"
    params: list[object] = [since]
    who = own(db, instrument)
    if who is not None:
        sql, params = sql + " AND instrument = ?", [*params, who]
    return [
        HeartbeatSample(float(r["at"]), r["state"], r["queued"], r["instrument"])
        for r in db.rows(sql + " ORDER BY at, instrument", params)
    ]


# -- watched folders ---------------------------------------------------------------------------


def record_watched_folder(
    db: Database, path: str | os.PathLike[str], *, now: float | None = None
) -> None:
    """This instrument's daemon watches ``path`` (resolved, absolute) on this database: the
    dashboard serves the instrument's image files only from under the folders recorded here."""
    t = _now(now)
    folder = os.path.realpath(os.fspath(path))
    write(
        db,
        lambda db: db.execute(
            "INSERT INTO watched_folders (instrument, path, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?) "
            "ON CONFLICT (instrument, path) DO UPDATE SET last_seen = excluded.last_seen",
            (db.writer, folder, t, t),
        ),
    )


def watched_folders(db: Database, *, instrument: str | None = None) -> list[WatchedFolder]:
    """Every folder the daemons (or ``instrument``'s) watched on this database, first seen
    first."""
    where, params = _where(instrument)
    return [
        WatchedFolder(r["path"], float(r["first_seen"]), float(r["last_seen"]), r["instrument"])
        for r in db.rows(
            f"SELECT * FROM watched_folders{where} ORDER BY first_seen, instrument, path", params
        )
    ]
