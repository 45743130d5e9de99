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
from stemwatch.store.instruments import own
from stemwatch.store.records import ModelSwitch


def daemon_model_sql(instrument_column: str) -> str:
    """The current model of the instrument named by ``instrument_column`` (an SQL expression
    of the enclosing query) as an SQL expression: other reads order by it."""
    return (
        "coalesce((SELECT s.model_hash FROM model_switches s "
        f"WHERE s.instrument = {instrument_column} ORDER BY s.at DESC, s.id DESC LIMIT 1), "
        "(SELECT m.model_hash FROM models m "
        f"WHERE m.instrument = {instrument_column} ORDER BY m.last_seen DESC LIMIT 1))"
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
    """The daemon of this handle's instrument took ``model_hash`` into use (``reason``:
    start, SIGHUP, model file replaced)."""
    t = _now(now)
    row = write(
        db,
        lambda db: db.row(
            "INSERT INTO model_switches (instrument, at, model_hash, previous_hash, reason, "
            "detail) VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
            (db.writer, t, model_hash, previous_hash, reason, detail),
        ),
    )
    assert row is not None
    return _switch(row)


def _switch(r: Any) -> ModelSwitch:
    return ModelSwitch(
        id=int(r["id"]),
        instrument=r["instrument"],
        at=float(r["at"]),
        model_hash=r["model_hash"],
        previous_hash=r["previous_hash"],
        reason=r["reason"],
        detail=r["detail"] or "",
    )


def model_switches(
    db: Database, *, instrument: str | None = None, limit: int = 100
) -> list[ModelSwitch]:
    """The daemons' model switches (``instrument``'s, else the handle's instrument's; a
    facility handle: every instrument's), newest first."""
    who = own(db, instrument)
    where, params = ("", []) if who is None else (" WHERE instrument = ?", [who])
    return [
        _switch(r)
        for r in db.rows(
            f"SELECT * FROM model_switches{where} ORDER BY at DESC, id DESC LIMIT ?",
            [*params, int(limit)],
        )
    ]


def daemon_model_hash(db: Database, *, instrument: str | None = None) -> str | None:
    """The current model of ``instrument``'s daemon (else the handle's instrument's; a
    facility handle: of the latest switch anywhere): its latest switch's model, else the
    model it registered last (a database no daemon started on since v6)."""
    who = own(db, instrument)
    where, params = ("", []) if who is None else (" WHERE instrument = ?", [who])
    h = db.scalar(
        f"SELECT model_hash FROM model_switches{where} ORDER BY at DESC, id DESC LIMIT 1", params
    )
    if h is None:
        h = db.scalar(
            f"SELECT model_hash FROM models{where} ORDER BY last_seen DESC LIMIT 1", params
        )
    return None if h is None else str(h)
