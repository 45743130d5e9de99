"""Re-analysis and comparison: which images a model has not scored yet, its predictions
recorded in batches, and two models' predictions side by side.

A re-analysis (``stemwatch reanalyse``) never touches the image records the daemon wrote: it
adds one prediction per image and model (``UNIQUE (image_id, model_hash)``), so its progress
*is* the predictions table and an interrupted run resumes by asking
:func:`images_to_rescore` again. The scope of every call is ``plates`` (names; None: every
plate) of ``instrument`` (None: every instrument).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from stemwatch.core.compare import ComparisonInput, ImagePair, ModelSide, OnsetTimes, seen_wells
from stemwatch.core.labels import Label
from stemwatch.core.times import is_clock_time
from stemwatch.store.connection import Database, snapshot, write
from stemwatch.store.errors import StoreError
from stemwatch.store.images import _upsert_prediction
from stemwatch.store.instruments import plate_instrument
from stemwatch.store.labels import labelled_images
from stemwatch.store.models import daemon_model_hash
from stemwatch.store.platemaps import plate_map
from stemwatch.store.records import ImageToScore, PlateModel, Prediction, Reanalysis
from stemwatch.store.wells import list_onsets, list_plates


def _scope(plates: Sequence[str] | None, instrument: str | None) -> tuple[str, list[Any]]:
    """`` AND ...`` restricting images ``i`` to ``plates`` of ``instrument``."""
    where, params = "", list[Any]()
    if plates is not None:
        if not plates:
            return " AND 1 = 0", []
        where += f" AND i.plate IN ({', '.join('?' for _ in plates)})"
        params += list(plates)
    if instrument is not None:
        where += " AND i.instrument = ?"
        params.append(instrument)
    return where, params


# bad frames (images.quality: blank, saturated, all-NaN) are never scored, by any model
_UNSCORED = (
    "FROM images i WHERE i.superseded_by IS NULL AND i.status = 'done' AND i.quality IS NULL "
    "AND NOT EXISTS (SELECT 1 FROM predictions p WHERE p.image_id = i.id AND p.model_hash = ?)"
)


def images_to_rescore(
    db: Database,
    model_hash: str,
    *,
    plates: Sequence[str] | None = None,
    instrument: str | None = None,
    limit: int | None = None,
) -> list[ImageToScore]:
    """Current analysed images that ``model_hash`` has not scored, by instrument, plate, well
    and time (``limit``: at most this many)."""
    where, params = _scope(plates, instrument)
    sql = (
        "SELECT i.id, i.instrument, i.path, i.content_hash, i.size, i.plate, i.well, "
        "i.channel, i.z "
        f"{_UNSCORED}{where} "
        "ORDER BY i.instrument, i.plate, i.well, coalesce(i.time_s, -1), i.field, i.id"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [
        ImageToScore(
            image_id=int(r["id"]),
            path=r["path"],
            content_hash=r["content_hash"],
            size=r["size"],
            plate=r["plate"],
            well=r["well"],
            instrument=r["instrument"],
            channel=r["channel"],
            z=r["z"],
        )
        for r in db.rows(sql, [model_hash, *params])
    ]


def count_unscored(
    db: Database,
    model_hash: str,
    *,
    plates: Sequence[str] | None = None,
    instrument: str | None = None,
) -> int:
    """How many current analysed images ``model_hash`` has not scored."""
    where, params = _scope(plates, instrument)
    return int(db.scalar(f"SELECT count(*) {_UNSCORED}{where}", [model_hash, *params]))


def record_predictions(
    db: Database, predictions: Sequence[tuple[int, Prediction]], *, now: float | None = None
) -> None:
    """Store another model's prediction of each recorded image ``(image_id, prediction)``,
    all in one transaction. The image records are left as the daemon wrote them."""
    t = time.time() if now is None else now

    def do(db: Database) -> None:
        for image_id, p in predictions:
            _upsert_prediction(db, image_id, p, t)

    write(db, do)


def scored_wells(
    db: Database,
    model_hash: str,
    *,
    plates: Sequence[str] | None = None,
    instrument: str | None = None,
) -> list[tuple[str, str, str]]:
    """(instrument, plate, well) of every well with current images ``model_hash`` scored."""
    where, params = _scope(plates, instrument)
    return [
        (str(r[0]), str(r[1]), str(r[2]))
        for r in db.rows(
            "SELECT DISTINCT i.instrument, i.plate, i.well FROM images i JOIN predictions p "
            "ON p.image_id = i.id AND p.model_hash = ? WHERE i.superseded_by IS NULL "
            f"AND i.plate IS NOT NULL AND i.well IS NOT NULL{where} "
            "ORDER BY i.instrument, i.plate, i.well",
            [model_hash, *params],
        )
    ]


def paired_predictions(
    db: Database,
    model_a: str,
    model_b: str,
    *,
    plates: Sequence[str] | None = None,
    instrument: str | None = None,
) -> list[ImagePair]:
    """Every current placed image scored by either model, with both probabilities."""
    where, params = _scope(plates, instrument)
    rows = db.rows(
        "SELECT i.id, i.instrument, i.plate, i.well, i.time_s, "
        "pa.probability AS a, pb.probability AS b FROM images i "
        "LEFT JOIN predictions pa ON pa.image_id = i.id AND pa.model_hash = ? "
        "LEFT JOIN predictions pb ON pb.image_id = i.id AND pb.model_hash = ? "
        "WHERE i.superseded_by IS NULL AND i.plate IS NOT NULL AND i.well IS NOT NULL "
        f"AND (pa.id IS NOT NULL OR pb.id IS NOT NULL){where} "
        "ORDER BY i.instrument, i.plate, i.well, coalesce(i.time_s, -1), i.field, i.id",
        [model_a, model_b, *params],
    )
    plates_on: dict[str, str] = {}
    for r in rows:
        other = plates_on.setdefault(r["plate"], r["instrument"])
        if other != r["instrument"]:
            raise StoreError(
                f"{db.source}: plate {r['plate']!r} was imaged on several instruments "
                f"({other}, {r['instrument']}); compare one instrument's plates at a time"
            )
    return [
        ImagePair(
            image_id=int(r["id"]),
            plate=r["plate"],
            well=r["well"],
            time_s=r["time_s"],
            a=r["a"],
            b=r["b"],
        )
        for r in rows
    ]


def find_models(db: Database, text: str) -> list[str]:
    """Model hashes that ``text`` names: a hash, a unique prefix of one, or a model name."""
    rows = db.rows(
        "SELECT model_hash FROM models WHERE model_hash = ? OR model_hash LIKE ? OR name = ? "
        "UNION SELECT model_hash FROM reanalyses WHERE model_hash LIKE ? OR name = ? "
        "UNION SELECT DISTINCT model_hash FROM predictions WHERE model_hash = ? "
        "OR model_hash LIKE ?",
        (text, f"{text}%", text, f"{text}%", text, text, f"{text}%"),
    )
    return sorted({str(r[0]) for r in rows})


def start_reanalysis(
    db: Database,
    *,
    model_hash: str,
    name: str,
    metadata_json: str,
    by: str,
    plates: Sequence[str] | None = None,
    instrument: str | None = None,
    now: float | None = None,
) -> int:
    """Record that a re-analysis with this model begins; its id (for
    :func:`finish_reanalysis`)."""
    t = time.time() if now is None else now
    return int(
        write(
            db,
            lambda db: db.scalar(
                "INSERT INTO reanalyses (model_hash, name, metadata_json, plates, instrument, "
                "started_by, started_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    model_hash,
                    name,
                    metadata_json,
                    None if plates is None else ",".join(plates),
                    instrument,
                    by,
                    t,
                ),
            ),
        )
    )


def finish_reanalysis(
    db: Database,
    reanalysis_id: int,
    *,
    planned: int,
    scored: int,
    unscorable: int,
    interrupted: bool,
    now: float | None = None,
) -> None:
    """How far a re-analysis got (an interrupted run is resumed by a new one)."""
    t = time.time() if now is None else now
    write(
        db,
        lambda db: db.execute(
            "UPDATE reanalyses SET finished_at = ?, planned = ?, scored = ?, unscorable = ?, "
            "interrupted = ? WHERE id = ?",
            (t, planned, scored, unscorable, int(interrupted), reanalysis_id),
        ),
    )


def reanalyses(db: Database, *, model_hash: str | None = None) -> list[Reanalysis]:
    """Re-analysis runs (of ``model_hash``, else all), newest first."""
    sql, params = "SELECT * FROM reanalyses", list[Any]()
    if model_hash is not None:
        sql, params = sql + " WHERE model_hash = ?", [model_hash]
    return [
        Reanalysis(
            id=int(r["id"]),
            model_hash=r["model_hash"],
            name=r["name"],
            metadata_json=r["metadata_json"],
            plates=r["plates"],
            instrument=r["instrument"],
            started_by=r["started_by"],
            started_at=float(r["started_at"]),
            finished_at=r["finished_at"],
            planned=r["planned"],
            scored=r["scored"],
            unscorable=r["unscorable"],
            interrupted=None if r["interrupted"] is None else bool(r["interrupted"]),
        )
        for r in db.rows(sql + " ORDER BY started_at DESC, id DESC", params)
    ]


def _model_info(db: Database, model_hash: str) -> Any:
    """(name, metadata_json) of a model: a daemon's, else a re-analysis's."""
    return db.row(
        "SELECT name, metadata_json FROM models WHERE model_hash = ? "
        "UNION ALL SELECT name, metadata_json FROM reanalyses WHERE model_hash = ? LIMIT 1",
        (model_hash, model_hash),
    )


def _side(
    db: Database, model_hash: str, plates: Sequence[str] | None, instrument: str | None
) -> ModelSide:
    r = _model_info(db, model_hash)
    name = (r["name"] if r is not None and r["name"] else "model") + f" ({model_hash[:8]})"
    training: Any = None
    if r is not None and r["metadata_json"]:
        try:
            training = json.loads(r["metadata_json"]).get("training")
        except (ValueError, AttributeError):
            training = None
    onsets: dict[tuple[str, str], OnsetTimes] = {}
    for o in sorted(
        list_onsets(db, model_hash=model_hash, instrument=instrument),
        key=lambda o: (o.episode, o.id),
    ):
        if plates is None or o.plate in plates:
            onsets.setdefault((o.plate, o.well), OnsetTimes(o.onset_time_s, o.detected_time_s))
    scored = scored_wells(db, model_hash, plates=plates, instrument=instrument)
    return ModelSide(
        model_hash=model_hash,
        name=name,
        onsets=onsets,
        scored_wells=frozenset((p, w) for _, p, w in scored),
        seen=seen_wells(training if isinstance(training, dict) else None),
    )


def comparison_input(
    db: Database,
    model_a: str,
    model_b: str,
    *,
    plates: Sequence[str] | None = None,
    instrument: str | None = None,
) -> ComparisonInput:
    """What :func:`stemwatch.core.compare.compare_models` needs to compare two models on the
    database's images (of ``plates`` of ``instrument``, else all): both models' predictions,
    onsets and training splits, the lab's labels and the plate maps. Plates of the same name
    on two instruments are an error that asks for ``instrument``."""
    with snapshot(db):
        pairs = paired_predictions(db, model_a, model_b, plates=plates, instrument=instrument)
        labels: dict[int, Label] = {
            i.image_id: i.label
            for i in labelled_images(db, plates, instrument=instrument)
            if i.label != "excluded"
        }
        shown = sorted({p.plate for p in pairs})
        summaries = {p.plate: p for p in list_plates(db, instrument=instrument) if p.plate in shown}
        maps = {
            p: m
            for p in shown
            if (
                m := plate_map(
                    db, p, instrument=summaries[p].instrument if p in summaries else None
                )
            )
            is not None
        }
        return ComparisonInput(
            a=_side(db, model_a, plates, instrument),
            b=_side(db, model_b, plates, instrument),
            pairs=pairs,
            labels=labels,
            plate_maps=maps,
            plate_starts={p: s.first_time_s for p, s in summaries.items()},
            clock={p: is_clock_time(s.time_basis) for p, s in summaries.items()},
        )


def plate_models(db: Database, plate: str, *, instrument: str | None = None) -> list[PlateModel]:
    """Every model with a series on ``plate``, the daemon's current one first."""
    with snapshot(db):
        who = plate_instrument(db, plate, instrument)
        current = daemon_model_hash(db, instrument=who)
        rows = db.rows(
            "SELECT s.model_hash, count(DISTINCT s.well) AS n FROM well_series s "
            "WHERE s.instrument = ? AND s.plate = ? GROUP BY s.model_hash ORDER BY s.model_hash",
            (who, plate),
        )
        names = {str(r[0]): (_model_info(db, str(r[0])) or {"name": None})["name"] for r in rows}
    out = [
        PlateModel(
            str(r["model_hash"]),
            names[str(r["model_hash"])],
            int(r["n"]),
            r["model_hash"] == current,
        )
        for r in rows
    ]
    return sorted(out, key=lambda m: (not m.daemon, m.name or "", m.model_hash))
