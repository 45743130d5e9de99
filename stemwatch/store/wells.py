"""Plates and wells: per-well series, onsets, detector state, and the plate/well summaries.

Series and onsets are kept per model (``model_hash``): re-analysing a plate with another model
adds that model's series beside the daemon's instead of overwriting it. Reads take a
``model_hash``; left out, a plate is shown through :func:`plate_model`: the daemon's current
model when it analysed the plate, else the model that analysed the plate last.

A well's episode (:class:`WellState`) belongs to the well, not to a model: a reset closes the
onsets of every model and re-arms the well.

A plate belongs to the instrument that imaged it: every row here carries the instrument, and
calls about one plate take ``instrument=`` (else the rule of :mod:`stemwatch.store.instruments`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from stemwatch.store.connection import Database, snapshot, write
from stemwatch.store.instruments import plate_instrument
from stemwatch.store.models import daemon_model_hash
from stemwatch.store.records import (
    NewOnset,
    OnsetRecord,
    PlateSummary,
    SeriesPoint,
    TimePoint,
    WellState,
    WellSummary,
)

log = logging.getLogger(__name__)


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def plate_model(db: Database, plate: str, *, instrument: str | None = None) -> str | None:
    """The model a plate is shown through by default: its instrument's current model if it
    has a series on the plate, else the model whose series on the plate changed last (None:
    the plate has no series yet)."""
    who = plate_instrument(db, plate, instrument)
    current = daemon_model_hash(db, instrument=who)
    if current is not None and db.row(
        "SELECT 1 FROM well_series WHERE instrument = ? AND model_hash = ? AND plate = ? LIMIT 1",
        (who, current, plate),
    ):
        return current
    latest = db.scalar(
        "SELECT model_hash FROM well_series WHERE instrument = ? AND plate = ? "
        "ORDER BY updated_at DESC LIMIT 1",
        (who, plate),
    )
    return None if latest is None else str(latest)


# --------------------------------------------------------------------------------------------
# Writes: the daemon's onset update, the dashboard's reset
# --------------------------------------------------------------------------------------------


def well_state(db: Database, plate: str, well: str, *, instrument: str | None = None) -> WellState:
    """The well's episode and where it began (defaults before the first reset)."""
    r = db.row(
        "SELECT episode, rearm_after_key FROM well_state "
        "WHERE instrument = ? AND plate = ? AND well = ?",
        (plate_instrument(db, plate, instrument), plate, well),
    )
    return WellState() if r is None else WellState(int(r["episode"]), r["rearm_after_key"])


def save_well_analysis(
    db: Database,
    plate: str,
    well: str,
    *,
    model_hash: str,
    series: Sequence[TimePoint],
    onset: NewOnset | None,
    episode: int,
    instrument: str | None = None,
    now: float | None = None,
) -> OnsetRecord | None:
    """Replace ``model_hash``'s series of the well and record ``onset`` if it is new, atomically.

    ``episode`` is the well's episode the detection was computed for (:func:`well_state`).
    The onset is stored only if the well is still in that episode (a reset in between makes it
    stale) and this model has no onset for it yet. Returns the new onset, else None.
    Several writers (daemons, a re-analysis) may save the same well: each save is whole.
    """
    t = _now(now)

    def do(db: Database) -> OnsetRecord | None:
        who = plate_instrument(db, plate, instrument)
        db.lock("well", who, plate, well)
        db.execute(
            "DELETE FROM well_series "
            "WHERE instrument = ? AND model_hash = ? AND plate = ? AND well = ?",
            (who, model_hash, plate, well),
        )
        db.executemany(
            "INSERT INTO well_series (instrument, model_hash, plate, well, seq, timepoint, "
            "time_s, probability, sd, sem, n_fields, n_tiles, smoothed, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    who,
                    model_hash,
                    plate,
                    well,
                    seq,
                    p.timepoint,
                    p.time_s,
                    p.probability,
                    p.sd,
                    p.sem,
                    p.n_fields,
                    p.n_tiles,
                    p.smoothed,
                    t,
                )
                for seq, p in enumerate(series)
            ],
        )
        if onset is None or well_state(db, plate, well, instrument=who).episode != episode:
            return None
        row = db.row(
            "INSERT INTO onsets (instrument, model_hash, plate, well, episode, onset_time_s, "
            "onset_timepoint, detected_time_s, detected_timepoint, time_basis, detected_at, "
            "probability) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (instrument, model_hash, plate, well, episode) DO NOTHING RETURNING *",
            (
                who,
                model_hash,
                plate,
                well,
                episode,
                onset.onset_time_s,
                onset.onset_timepoint,
                onset.detected_time_s,
                onset.detected_timepoint,
                onset.time_basis,
                t,
                onset.probability,
            ),
        )
        return None if row is None else _onset(row)

    return write(db, do)


def reset_well(
    db: Database,
    plate: str,
    well: str,
    *,
    by: str,
    instrument: str | None = None,
    now: float | None = None,
) -> int:
    """Close the well's current episode (its onsets are marked reset) and re-arm it.

    The detector then ignores everything up to the well's latest time point and fires again
    only after the probability has fallen below ``off_threshold`` and risen again. Returns the
    new episode number. Needs a writable database.
    """
    t = _now(now)

    def do(db: Database) -> int:
        who = plate_instrument(db, plate, instrument)
        db.lock("well", who, plate, well)
        last = db.scalar(
            "SELECT max(coalesce(time_s, timepoint)) FROM well_series "
            "WHERE instrument = ? AND plate = ? AND well = ?",
            (who, plate, well),
        )
        db.execute(
            "UPDATE onsets SET reset_at = ?, reset_by = ? "
            "WHERE instrument = ? AND plate = ? AND well = ? AND reset_at IS NULL",
            (t, by, who, plate, well),
        )
        return int(
            db.scalar(
                "INSERT INTO well_state (instrument, plate, well, episode, rearm_after_key, "
                "reset_at, reset_by) VALUES (?, ?, ?, 1, ?, ?, ?) "
                "ON CONFLICT (instrument, plate, well) DO UPDATE SET "
                "episode = well_state.episode + 1, "
                "rearm_after_key = excluded.rearm_after_key, "
                "reset_at = excluded.reset_at, reset_by = excluded.reset_by RETURNING episode",
                (who, plate, well, last, t, by),
            )
        )

    episode = write(db, do)
    log.info("%s %s reset by %s; now episode %d", plate, well, by, episode)
    return episode


# --------------------------------------------------------------------------------------------
# Reads
# --------------------------------------------------------------------------------------------


def _point(r: Any) -> SeriesPoint:
    return SeriesPoint(
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
        model_hash=r["model_hash"],
    )


def _onset(r: Any) -> OnsetRecord:
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
        model_hash=r["model_hash"],
        time_basis=r["time_basis"],
        instrument=r["instrument"],
    )


def well_series(
    db: Database,
    plate: str,
    well: str,
    *,
    model_hash: str | None = None,
    instrument: str | None = None,
) -> list[SeriesPoint]:
    """The aggregated per-time-point series of one well, in time order (None: through
    :func:`plate_model`)."""
    with snapshot(db):
        who = plate_instrument(db, plate, instrument)
        model = model_hash or plate_model(db, plate, instrument=who)
        return [
            _point(r)
            for r in db.rows(
                "SELECT * FROM well_series WHERE instrument = ? AND model_hash = ? "
                "AND plate = ? AND well = ? ORDER BY seq",
                (who, model, plate, well),
            )
        ]


def plate_series(
    db: Database,
    plate: str,
    *,
    wells: Sequence[str] | None = None,
    model_hash: str | None = None,
    instrument: str | None = None,
) -> list[SeriesPoint]:
    """The series of every well of ``plate`` (or of ``wells``) in one read, by well then time
    (None: through :func:`plate_model`)."""
    with snapshot(db):
        who = plate_instrument(db, plate, instrument)
        model = model_hash or plate_model(db, plate, instrument=who)
        sql = "SELECT * FROM well_series WHERE instrument = ? AND model_hash = ? AND plate = ?"
        params: list[Any] = [who, model, plate]
        if wells is not None:
            if not wells:
                return []
            sql += f" AND well IN ({', '.join('?' * len(wells))})"
            params.extend(wells)
        return [_point(r) for r in db.rows(sql + " ORDER BY well, seq", params)]


def list_onsets(
    db: Database,
    plate: str | None = None,
    *,
    include_reset: bool = True,
    model_hash: str | None = None,
    instrument: str | None = None,
) -> list[OnsetRecord]:
    """Onset events, newest first: of one plate or all, of every instrument or of
    ``instrument``, without the reset ones if asked, of ``model_hash`` (None: each plate's
    :func:`plate_model`)."""
    sql, params = "SELECT * FROM onsets WHERE 1 = 1", list[str]()
    if plate is not None:
        sql, params = sql + " AND plate = ?", [*params, plate]
    if instrument is not None:
        sql, params = sql + " AND instrument = ?", [*params, instrument]
    if not include_reset:
        sql += " AND reset_at IS NULL"
    sql += " ORDER BY detected_at DESC, id DESC"
    with snapshot(db):
        rows = db.rows(sql, params)
        if model_hash is None:
            shown = {
                (i, p): plate_model(db, p, instrument=i)
                for i, p in {(r["instrument"], r["plate"]) for r in rows}
            }
            return [
                _onset(r)
                for r in rows
                if shown[(r["instrument"], r["plate"])] in (None, r["model_hash"])
            ]
        return [_onset(r) for r in rows if r["model_hash"] == model_hash]


def well_summary(
    db: Database, plate: str, *, model_hash: str | None = None, instrument: str | None = None
) -> list[WellSummary]:
    """One row per well of ``plate`` with its latest aggregated point and onset state."""
    with snapshot(db):
        who = plate_instrument(db, plate, instrument)
        model = model_hash or plate_model(db, plate, instrument=who)
        n_images = {
            r["well"]: int(r["n"])
            for r in db.rows(
                "SELECT well, count(*) AS n FROM images WHERE instrument = ? AND plate = ? "
                "AND well IS NOT NULL AND superseded_by IS NULL GROUP BY well",
                (who, plate),
            )
        }
        # the last point of each well and the number of points, set-based (portable: no
        # bare columns beside max(), which only SQLite fills from the row holding it)
        last: dict[str, Any] = {}
        n_points: dict[str, int] = {}
        for r in db.rows(
            "SELECT s.well, s.timepoint, s.time_s, s.probability, s.sd, s.smoothed, m.n "
            "FROM well_series s JOIN (SELECT well, max(seq) AS seq, count(*) AS n "
            "FROM well_series WHERE instrument = ? AND model_hash = ? AND plate = ? "
            "GROUP BY well) m ON m.well = s.well AND m.seq = s.seq "
            "WHERE s.instrument = ? AND s.model_hash = ? AND s.plate = ?",
            (who, model, plate, who, model, plate),
        ):
            last[r["well"]] = r
            n_points[r["well"]] = int(r["n"])
        onset = {
            o.well: o
            for o in reversed(
                list_onsets(db, plate, include_reset=False, model_hash=model, instrument=who)
            )
        }
        episodes = {
            r["well"]: int(r["episode"])
            for r in db.rows(
                "SELECT well, episode FROM well_state WHERE instrument = ? AND plate = ?",
                (who, plate),
            )
        }
    out = []
    for well in sorted(set(n_images) | set(last)):
        s = last.get(well)
        o = onset.get(well)
        out.append(
            WellSummary(
                plate=plate,
                well=well,
                n_images=n_images.get(well, 0),
                n_timepoints=n_points.get(well, 0),
                last_timepoint=s["timepoint"] if s else None,
                last_time_s=s["time_s"] if s else None,
                last_probability=s["probability"] if s else None,
                last_sd=s["sd"] if s else None,
                last_smoothed=s["smoothed"] if s else None,
                onset=o is not None,
                onset_time_s=o.onset_time_s if o else None,
                episode=episodes.get(well, 0),
                instrument=who,
            )
        )
    return out


def list_plates(db: Database, *, instrument: str | None = None) -> list[PlateSummary]:
    """Every plate with images, of every instrument (or of ``instrument``), grouped by
    instrument and by name within it.

    One pass over the current images (grouped by plate and time basis), the wells from the
    well index, the time points from the series: the dashboard asks this at every render.
    """
    where, params = ("", ()) if instrument is None else (" AND instrument = ?", (instrument,))
    with snapshot(db):
        groups = db.rows(
            "SELECT instrument, plate, time_basis, count(*) AS n, "
            "count(*) FILTER (WHERE status = 'failed') AS n_failed, "
            "min(time_s) AS first_t, max(time_s) AS last_t, max(updated_at) AS last_up, "
            "min(created_at) AS first_in "
            f"FROM images WHERE plate IS NOT NULL AND superseded_by IS NULL{where} "
            "GROUP BY instrument, plate, time_basis",
            params,
        )
        n_wells = {
            (r[0], r[1]): int(r[2])
            for r in db.rows(
                "SELECT instrument, plate, count(DISTINCT well) FROM images "
                f"WHERE plate IS NOT NULL AND well IS NOT NULL{where} GROUP BY instrument, plate",
                params,
            )
        }
        n_points = {
            (r[0], r[1]): int(r[2])
            for r in db.rows(
                "SELECT instrument, plate, max(n) FROM (SELECT instrument, plate, count(*) AS n "
                f"FROM well_series WHERE 1 = 1{where} GROUP BY instrument, model_hash, plate, "
                "well) per_well GROUP BY instrument, plate",
                params,
            )
        }
        onsets = Counter(
            (o.instrument, o.plate)
            for o in list_onsets(db, include_reset=False, instrument=instrument)
        )
    by_plate: dict[tuple[str, str], list[Any]] = {}
    for r in groups:
        by_plate.setdefault((r["instrument"], r["plate"]), []).append(r)
    out = []
    for key in sorted(by_plate):
        rs = by_plate[key]
        bases = Counter({r["time_basis"]: int(r["n"]) for r in rs if r["time_basis"] is not None})
        out.append(
            PlateSummary(
                plate=key[1],
                n_wells=n_wells.get(key, 0),
                n_images=sum(int(r["n"]) for r in rs),
                n_failed=sum(int(r["n_failed"]) for r in rs),
                first_time_s=_extreme(min, (r["first_t"] for r in rs)),
                last_time_s=_extreme(max, (r["last_t"] for r in rs)),
                last_update_at=_extreme(max, (r["last_up"] for r in rs)),
                n_onsets=onsets.get(key, 0),
                time_basis=_majority(bases),
                instrument=key[0],
                first_arrival_at=_extreme(min, (r["first_in"] for r in rs)),
                n_timepoints=n_points.get(key, 0),
            )
        )
    return out


def _extreme(pick: Any, values: Any) -> Any:
    present = [v for v in values if v is not None]
    return pick(present) if present else None


def _majority(counts: Counter[str] | None) -> Any:
    if not counts:
        return None
    return max(sorted(counts), key=lambda basis: counts[basis])
