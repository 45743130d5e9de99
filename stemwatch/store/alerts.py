"""Alerts, their deliveries per channel, and the instrument conditions behind them.

Each daemon raises, deduplicates, rate-limits and tracks conditions for its own instrument:
alerts, deliveries and conditions carry the instrument of the handle that wrote them
(:attr:`Database.writer <stemwatch.store.database.Database.writer>`); the dashboard lists and
acknowledges every instrument's alerts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from stemwatch.store.connection import Database, write
from stemwatch.store.errors import StoreError
from stemwatch.store.records import AlertCondition, AlertRecord, HeldBackAlert

# delivery results that did not use the channel's hourly budget
_NOT_SENT = ("rate-limited", "summarised")


def _now(now: float | None) -> float:
    return time.time() if now is None else now


# -- alerts ------------------------------------------------------------------------------------


def record_alert(
    db: Database,
    kind: str,
    message: str,
    *,
    plate: str | None = None,
    well: str | None = None,
    dedup_key: str | None = None,
    now: float | None = None,
) -> int | None:
    """Store a new alert; its id, or None when this instrument has an alert with
    ``dedup_key`` already."""
    t = _now(now)
    row = write(
        db,
        lambda db: db.row(
            "INSERT INTO alerts (instrument, kind, plate, well, dedup_key, message, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (instrument, dedup_key) DO NOTHING "
            "RETURNING id",
            (db.writer, kind, plate, well, dedup_key, message, t),
        ),
    )
    return None if row is None else int(row[0])


def set_channel_results(db: Database, alert_id: int, results: Mapping[str, str]) -> None:
    """What each channel made of the alert (``sent``, ``failed: why``, ``rate-limited``)."""
    write(
        db,
        lambda db: db.execute(
            "UPDATE alerts SET channel_results = ? WHERE id = ?",
            (json.dumps(dict(results)), alert_id),
        ),
    )


def _alert(r: Any) -> AlertRecord:
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
        instrument=r["instrument"],
    )


def list_alerts(
    db: Database,
    *,
    limit: int = 100,
    unacknowledged_only: bool = False,
    instrument: str | None = None,
    kind: str | None = None,
) -> list[AlertRecord]:
    """Alerts of every instrument (or of ``instrument``), of every kind (or of ``kind``),
    newest first."""
    sql, params = "SELECT * FROM alerts WHERE 1 = 1", []
    if unacknowledged_only:
        sql += " AND acknowledged_at IS NULL"
    if instrument is not None:
        sql, params = sql + " AND instrument = ?", [instrument]
    if kind is not None:
        sql, params = sql + " AND kind = ?", [*params, kind]
    sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
    return [_alert(r) for r in db.rows(sql, (*params, int(limit)))]


def acknowledge_alert(db: Database, alert_id: int, *, by: str, now: float | None = None) -> None:
    """Mark an alert as seen by ``by`` (needs a writable database)."""
    t = _now(now)

    def do(db: Database) -> None:
        row = db.row(
            "UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ? WHERE id = ? RETURNING id",
            (by, t, alert_id),
        )
        if row is None:
            raise StoreError(f"{db.source}: no alert with id {alert_id}")

    write(db, do)


# -- deliveries and the rate limit -------------------------------------------------------------


def record_delivery(
    db: Database,
    alert_id: int | None,
    channel: str,
    result: str,
    *,
    summarised: Sequence[int] = (),
    now: float | None = None,
) -> None:
    """One attempt to deliver through ``channel`` (``alert_id`` None: a summary). The held-back
    deliveries ``summarised`` (their ids) went out with it when it was sent."""
    t = _now(now)

    def do(db: Database) -> None:
        db.execute(
            "INSERT INTO alert_deliveries (instrument, alert_id, channel, at, result) "
            "VALUES (?, ?, ?, ?, ?)",
            (db.writer, alert_id, channel, t, result),
        )
        if result == "sent" and summarised:
            db.executemany(
                "UPDATE alert_deliveries SET result = 'summarised' WHERE id = ?",
                [(i,) for i in summarised],
            )

    write(db, do)


def deliveries_since(db: Database, channel: str, since: float) -> int:
    """Messages this instrument's ``channel`` sent (or tried to) since ``since``: what its
    rate limit counts."""
    return int(
        db.scalar(
            "SELECT count(*) FROM alert_deliveries WHERE instrument = ? AND channel = ? "
            "AND at > ? AND result NOT IN (?, ?)",
            (db.writer, channel, since, *_NOT_SENT),
        )
    )


def held_back(db: Database, channel: str) -> list[HeldBackAlert]:
    """Alerts the channel's rate limit held back and no summary has carried yet, oldest first."""
    return [
        HeldBackAlert(int(r["id"]), float(r["created_at"]), r["message"])
        for r in db.rows(
            "SELECT d.id, a.created_at, a.message FROM alert_deliveries d "
            "JOIN alerts a ON a.id = d.alert_id "
            "WHERE d.instrument = ? AND d.channel = ? AND d.result = 'rate-limited' "
            "ORDER BY d.id",
            (db.writer, channel),
        )
    ]


# -- instrument conditions ---------------------------------------------------------------------


def alert_condition(db: Database, key: str) -> AlertCondition | None:
    """The stored state of this instrument's condition ``key``, None if it never began."""
    r = db.row(
        "SELECT key, active, since, alert_id FROM alert_conditions "
        "WHERE instrument = ? AND key = ?",
        (db.writer, key),
    )
    if r is None:
        return None
    return AlertCondition(r["key"], bool(r["active"]), r["since"], r["alert_id"])


def begin_condition(db: Database, key: str, *, since: float, alert_id: int | None) -> None:
    """The condition began at ``since`` (and raised alert ``alert_id``)."""
    write(
        db,
        lambda db: db.execute(
            "INSERT INTO alert_conditions (instrument, key, active, since, alert_id) "
            "VALUES (?, ?, 1, ?, ?) ON CONFLICT (instrument, key) DO UPDATE SET active = 1, "
            "since = excluded.since, alert_id = excluded.alert_id",
            (db.writer, key, since, alert_id),
        ),
    )


def end_condition(db: Database, key: str) -> None:
    """The condition cleared: the next time it holds is a new episode."""
    write(
        db,
        lambda db: db.execute(
            "UPDATE alert_conditions SET active = 0 WHERE instrument = ? AND key = ?",
            (db.writer, key),
        ),
    )
