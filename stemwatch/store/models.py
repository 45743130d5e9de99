"""Which model the daemon uses: its switches, and the models known to the database.

The daemon records a switch whenever it takes a model into use: at start, on SIGHUP, and when
its model file was replaced (promotion without a restart). Its *current* model, the one every
view shows by default, is the model of the latest switch; a model that only re-analysed
plates (``stemwatch reanalyse``) is registered in ``models`` but never becomes the default.
A database without switches (no daemon ever started on it) falls back to the model seen last.
"""

from __future__ import annotations

import time
from typing import Any

from stemwatch.store.connection import Database, write
from stemwatch.store.records import ModelSwitch

# The daemon's current model as an SQL expression (other reads order by it).
DAEMON_MODEL_SQL = (
    "coalesce((SELECT model_hash FROM model_switches ORDER BY at DESC, id DESC LIMIT 1), "
    "(SELECT model_hash FROM models ORDER BY last_seen DESC LIMIT 1))"
)


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def record_model_switch(
    db: Database,
    *,
    model_hash: str,
    previous_hash: str | None,
    reason: str,
    detail: str = "",
    now: float | None = None,
) -> ModelSwitch:
    """The daemon took ``model_hash`` into use (``reason``: start, SIGHUP, file replaced)."""
    t = _now(now)
    row = write(
        db,
        lambda db: db.row(
            "INSERT INTO model_switches (at, model_hash, previous_hash, reason, detail) "
            "VALUES (?, ?, ?, ?, ?) RETURNING *",
            (t, model_hash, previous_hash, reason, detail),
        ),
    )
    assert row is not None
    return _switch(row)


def _switch(r: Any) -> ModelSwitch:
    return ModelSwitch(
        id=int(r["id"]),
        at=float(r["at"]),
        model_hash=r["model_hash"],
        previous_hash=r["previous_hash"],
        reason=r["reason"],
        detail=r["detail"] or "",
    )


def model_switches(db: Database, *, limit: int = 100) -> list[ModelSwitch]:
    """The daemon's model switches, newest first."""
    return [
        _switch(r)
        for r in db.rows(
            "SELECT * FROM model_switches ORDER BY at DESC, id DESC LIMIT ?", (int(limit),)
        )
    ]


def daemon_model_hash(db: Database) -> str | None:
    """The daemon's current model: the latest switch's, else the model seen last."""
    h = db.scalar(f"SELECT {DAEMON_MODEL_SQL}")
    return None if h is None else str(h)
