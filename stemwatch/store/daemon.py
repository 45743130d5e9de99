"""The daemon's own rows: the models it used and its heartbeat."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from stemwatch.store.connection import Database, snapshot, write
from stemwatch.store.models import daemon_model_hash
from stemwatch.store.records import Heartbeat, ModelRecord


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
    """Record the model in use (first sighting kept; provider and last sighting updated)."""
    t = _now(now)
    write(
        db,
        lambda db: db.execute(
            "INSERT INTO models (model_hash, name, metadata_json, provider, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model_hash) DO UPDATE SET "
            "name = excluded.name, metadata_json = excluded.metadata_json, "
            "provider = excluded.provider, last_seen = excluded.last_seen",
            (model_hash, name, metadata_json, provider, t, t),
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
    )


def current_model(db: Database) -> ModelRecord | None:
    """The daemon's current model (see :func:`stemwatch.store.models.daemon_model_hash`)."""
    with snapshot(db):
        h = daemon_model_hash(db)
        r = None if h is None else db.row("SELECT * FROM models WHERE model_hash = ?", (h,))
    return _model(r) if r else None


def list_models(db: Database) -> list[ModelRecord]:
    """Every model the database knows (the daemon's and re-analyses'), first seen first."""
    return [_model(r) for r in db.rows("SELECT * FROM models ORDER BY first_seen")]


def beat(
    db: Database,
    *,
    state: str,
    detail: str = "",
    queued: int | None = None,
    interval_s: float | None = None,
    now: float | None = None,
) -> None:
    """The daemon's heartbeat: one row, overwritten.

    ``queued``: images it has found and not yet analysed; ``interval_s``: how often it beats,
    so readers can tell when it stopped (:meth:`Heartbeat.liveness`).
    """
    t = _now(now)
    write(
        db,
        lambda db: db.execute(
            "INSERT INTO heartbeat (id, pid, host, state, detail, at, interval_s, queued) "
            "VALUES (1, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, host = excluded.host, "
            "state = excluded.state, detail = excluded.detail, at = excluded.at, "
            "interval_s = excluded.interval_s, queued = excluded.queued",
            (os.getpid(), socket.gethostname(), state, detail, t, interval_s, queued),
        ),
    )


def last_heartbeat(db: Database) -> Heartbeat | None:
    """The daemon's last heartbeat, or None if it never ran on this database."""
    r = db.row("SELECT * FROM heartbeat WHERE id = 1")
    if r is None:
        return None
    return Heartbeat(
        pid=r["pid"],
        host=r["host"],
        state=r["state"],
        detail=r["detail"],
        at=float(r["at"]),
        interval_s=r["interval_s"],
        queued=r["queued"],
    )
