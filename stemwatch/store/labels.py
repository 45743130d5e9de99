"""Labels from the lab, append-only: who said what about a well, when, and undo.

A label (:class:`~stemwatch.store.records.LabelRecord`) says a well was ``differentiated``,
``undifferentiated`` or ``excluded`` over a window of its time line. Nothing is ever deleted
or rewritten: a label only gains markers, ``superseded_by`` (a later active label of the same
well covers its whole window) and ``undone_by``/``undone_at`` (taken back). The label of an
image is the newest active label whose window covers the image's time (:func:`label_at`).

Where labels come from: the dashboard (:func:`label_well`, :func:`mark_false_alarm`, which
labels a well's images over an onset alert's window as undifferentiated), end-point staining
imported from a CSV (:func:`add_labels`) and the command line. :func:`labelled_images` gives
the training set's rows. Like its images, a well's labels belong to the instrument that imaged
the plate (the rule of :mod:`stemwatch.store.instruments`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from stemwatch.core.labels import Label, LabelError, check_label
from stemwatch.store.connection import Database, snapshot, write
from stemwatch.store.errors import StoreError
from stemwatch.store.instruments import plate_instrument
from stemwatch.store.records import LabelledImage, LabelRecord, NewLabel

log = logging.getLogger(__name__)

FALSE_ALARM = "false-alarm"
TIME_TOLERANCE_S = 600.0  # fields of one time point lie within this of its first field


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _label(r: Any) -> LabelRecord:
    return LabelRecord(
        id=int(r["id"]),
        plate=r["plate"],
        well=r["well"],
        label=r["label"],
        source=r["source"],
        from_time_s=r["from_time_s"],
        to_time_s=r["to_time_s"],
        time_basis=r["time_basis"],
        created_by=r["created_by"],
        created_at=float(r["created_at"]),
        note=r["note"],
        marker=r["marker"],
        stained_fraction=r["stained_fraction"],
        alert_id=r["alert_id"],
        onset_id=r["onset_id"],
        superseded_by=r["superseded_by"],
        undone_by=r["undone_by"],
        undone_at=r["undone_at"],
        instrument=r["instrument"],
    )


def label_at(labels: Iterable[LabelRecord], time_s: float | None) -> LabelRecord | None:
    """The label of an image at ``time_s``: the newest active label covering it (pure)."""
    best: LabelRecord | None = None
    for lab in labels:
        if lab.active and lab.covers(time_s) and (best is None or lab.id > best.id):
            best = lab
    return best


def _well_labels(db: Database, instrument: str, plate: str, well: str) -> list[LabelRecord]:
    return [
        _label(r)
        for r in db.rows(
            "SELECT * FROM labels WHERE instrument = ? AND plate = ? AND well = ? ORDER BY id",
            (instrument, plate, well),
        )
    ]


def _resupersede(db: Database, instrument: str, plate: str, well: str) -> None:
    """Set each label's ``superseded_by`` to the newest later active label containing its
    window (None when there is none): the marker always says what covers a label now."""
    labels = _well_labels(db, instrument, plate, well)
    for lab in labels:
        cover = None
        if lab.active:
            later = [o for o in labels if o.id > lab.id and o.active and o.contains(lab)]
            cover = max((o.id for o in later), default=None)
        if cover != lab.superseded_by:
            db.execute("UPDATE labels SET superseded_by = ? WHERE id = ?", (cover, lab.id))


def _insert(db: Database, new: NewLabel, by: str, t: float) -> LabelRecord:
    try:
        check_label(new.label)
    except LabelError as exc:
        raise StoreError(f"label of {new.plate} {new.well}: {exc}") from None
    if (
        new.from_time_s is not None
        and new.to_time_s is not None
        and new.from_time_s > new.to_time_s
    ):
        raise StoreError(
            f"label of {new.plate} {new.well}: the window starts ({new.from_time_s}) after it "
            f"ends ({new.to_time_s}); swap the two times"
        )
    who = plate_instrument(db, new.plate, new.instrument)
    row = db.row(
        "INSERT INTO labels (instrument, plate, well, label, from_time_s, to_time_s, "
        "time_basis, source, alert_id, onset_id, marker, stained_fraction, note, created_by, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        (
            who,
            new.plate,
            new.well,
            new.label,
            new.from_time_s,
            new.to_time_s,
            new.time_basis,
            new.source,
            new.alert_id,
            new.onset_id,
            new.marker,
            new.stained_fraction,
            new.note,
            by,
            t,
        ),
    )
    assert row is not None
    _resupersede(db, who, new.plate, new.well)
    return _label(row)


def add_labels(
    db: Database, labels: Sequence[NewLabel], *, by: str, now: float | None = None
) -> list[LabelRecord]:
    """Record ``labels`` in one transaction (all or none), in order; the stored records."""
    if not by.strip():
        raise StoreError("a label needs the name of who gives it (by)")
    t = _now(now)
    stored = write(db, lambda db: [_insert(db, new, by, t) for new in labels])
    for lab in stored:
        log.info(
            "label #%d: %s %s %s (%s) by %s", lab.id, lab.plate, lab.well, lab.label, lab.source, by
        )
    return stored


def _well_basis(db: Database, instrument: str, plate: str, well: str) -> Any:
    rows = db.rows(
        "SELECT time_basis, count(*) AS n FROM images WHERE instrument = ? AND plate = ? "
        "AND well = ? AND superseded_by IS NULL AND time_basis IS NOT NULL GROUP BY time_basis",
        (instrument, plate, well),
    )
    return max(rows, key=lambda r: int(r["n"]))["time_basis"] if rows else None


def label_well(
    db: Database,
    plate: str,
    well: str,
    label: Label,
    *,
    by: str,
    from_time_s: float | None = None,
    to_time_s: float | None = None,
    note: str | None = None,
    source: str = "dashboard",
    instrument: str | None = None,
    now: float | None = None,
) -> LabelRecord:
    """Label a well (from ``from_time_s`` on, up to ``to_time_s``; None: open on that side)
    as ``label``, said by ``by``. Times are in the well's time basis (its images' ``time_s``).
    """
    with snapshot(db):
        who = plate_instrument(db, plate, instrument)
        basis = _well_basis(db, who, plate, well)
    (stored,) = add_labels(
        db,
        [
            NewLabel(
                plate=plate,
                well=well,
                label=label,
                source=source,
                from_time_s=from_time_s,
                to_time_s=to_time_s,
                time_basis=basis,
                note=note,
                instrument=who,
            )
        ],
        by=by,
        now=now,
    )
    return stored


def _alert_onset(db: Database, alert: Any) -> Any:
    """The onset an onset alert reported: its well's episode (from the alert's key), the
    latest one detected before the alert."""
    episode = None
    key = alert["dedup_key"] or ""
    if key.startswith("onset:"):
        try:
            episode = int(key.rsplit(":", 1)[1])
        except ValueError:
            episode = None
    sql = "SELECT * FROM onsets WHERE instrument = ? AND plate = ? AND well = ? "
    params: list[Any] = [alert["instrument"], alert["plate"], alert["well"]]
    if episode is not None:
        sql, params = sql + "AND episode = ? ", [*params, episode]
    sql += "AND detected_at <= ? ORDER BY detected_at DESC, id DESC LIMIT 1"
    return db.row(sql, [*params, float(alert["created_at"]) + 1.0])


def mark_false_alarm(
    db: Database,
    alert_id: int,
    *,
    by: str,
    note: str | None = None,
    now: float | None = None,
) -> LabelRecord:
    """Mark an onset alert as a false alarm: the well's images over the alert's window (from
    the onset it reported to the time point at which it was detected) are labelled
    undifferentiated, and the alert is acknowledged by ``by`` if nobody had.

    Raises :class:`StoreError` for an unknown alert, an alert that is not an onset alert, or
    one already marked (undo that label first).
    """
    if not by.strip():
        raise StoreError("a false alarm needs the name of who marks it (by)")
    t = _now(now)

    def do(db: Database) -> LabelRecord:
        alert = db.row("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        if alert is None:
            raise StoreError(f"{db.source}: no alert with id {alert_id}")
        if alert["kind"] != "onset" or not alert["plate"] or not alert["well"]:
            raise StoreError(
                f"alert #{alert_id} is a {alert['kind']} alert, not an onset alert of a well; "
                "only onset alerts can be false alarms"
            )
        done = db.row(
            "SELECT id FROM labels WHERE alert_id = ? AND source = ? AND undone_at IS NULL",
            (alert_id, FALSE_ALARM),
        )
        if done is not None:
            raise StoreError(
                f"alert #{alert_id} is already marked as a false alarm (label #{done['id']}); "
                "undo that label to change it"
            )
        who, plate, well = alert["instrument"], alert["plate"], alert["well"]
        onset = _alert_onset(db, alert)
        start = end = None
        onset_id = None
        if onset is not None:
            onset_id = int(onset["id"])
            start = onset["onset_time_s"]
            end = onset["detected_time_s"]
            if onset["detected_timepoint"] is not None:  # every field of that time point
                last = db.scalar(
                    "SELECT max(time_s) FROM images WHERE instrument = ? AND plate = ? "
                    "AND well = ? AND timepoint = ? AND superseded_by IS NULL",
                    (who, plate, well, onset["detected_timepoint"]),
                )
                end = last if last is not None else end
            elif end is not None:
                end = float(end) + TIME_TOLERANCE_S
        if start is None or end is None:
            raise StoreError(
                f"alert #{alert_id}: the onset it reported has no times, so its window is "
                f"unknown; label {plate} {well} from a time point instead"
            )
        if db.row("SELECT 1 FROM alerts WHERE id = ? AND acknowledged_at IS NULL", (alert_id,)):
            db.execute(
                "UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ? WHERE id = ?",
                (by, t, alert_id),
            )
        return _insert(
            db,
            NewLabel(
                plate=plate,
                well=well,
                label="undifferentiated",
                source=FALSE_ALARM,
                from_time_s=float(start),
                to_time_s=float(end),
                time_basis=onset["time_basis"] or _well_basis(db, who, plate, well),
                note=note,
                alert_id=alert_id,
                onset_id=onset_id,
                instrument=who,
            ),
            by,
            t,
        )

    stored = write(db, do)
    log.info(
        "alert #%d marked as a false alarm by %s: %s %s undifferentiated (label #%d)",
        alert_id,
        by,
        stored.plate,
        stored.well,
        stored.id,
    )
    return stored


def undo_label(db: Database, label_id: int, *, by: str, now: float | None = None) -> LabelRecord:
    """Take label ``label_id`` back (it stays, marked undone by ``by``); the labels it had
    superseded apply again where nothing else covers them."""
    t = _now(now)

    def do(db: Database) -> LabelRecord:
        row = db.row(
            "UPDATE labels SET undone_by = ?, undone_at = ? WHERE id = ? AND undone_at IS NULL "
            "RETURNING *",
            (by, t, label_id),
        )
        if row is None:
            old = db.row("SELECT undone_by FROM labels WHERE id = ?", (label_id,))
            if old is None:
                raise StoreError(f"{db.source}: no label with id {label_id}")
            raise StoreError(f"label #{label_id} was already undone by {old['undone_by']}")
        _resupersede(db, row["instrument"], row["plate"], row["well"])
        again = db.row("SELECT * FROM labels WHERE id = ?", (label_id,))
        return _label(again)

    undone = write(db, do)
    log.info("label #%d undone by %s", label_id, by)
    return undone


# --------------------------------------------------------------------------------------------
# Reads
# --------------------------------------------------------------------------------------------


def list_labels(
    db: Database,
    plate: str | None = None,
    well: str | None = None,
    *,
    include_undone: bool = True,
    source: str | None = None,
    instrument: str | None = None,
) -> list[LabelRecord]:
    """Labels, newest first: of one plate (and well; the plate's instrument) or of every
    plate (of ``instrument``, else of every instrument), of one source if asked."""
    who = instrument if plate is None else plate_instrument(db, plate, instrument)
    sql, params = "SELECT * FROM labels WHERE 1 = 1", list[Any]()
    for column, value in (("instrument", who), ("plate", plate), ("well", well)):
        if value is not None:
            sql, params = f"{sql} AND {column} = ?", [*params, value]
    if not include_undone:
        sql += " AND undone_at IS NULL"
    if source is not None:
        sql += " AND source = ?"
        params.append(source)
    sql += " ORDER BY id DESC"
    return [_label(r) for r in db.rows(sql, params)]


def false_alarms(db: Database) -> dict[int, LabelRecord]:
    """The active false-alarm label of each alert marked as one, by alert id."""
    return {
        int(r["alert_id"]): _label(r)
        for r in db.rows(
            "SELECT * FROM labels WHERE source = ? AND alert_id IS NOT NULL "
            "AND undone_at IS NULL ORDER BY id",
            (FALSE_ALARM,),
        )
    }


def well_time_range(
    db: Database, plate: str, well: str, *, instrument: str | None = None
) -> tuple[float | None, float | None, Any]:
    """(first, last) image time of a well's current images and their time basis."""
    with snapshot(db):
        who = plate_instrument(db, plate, instrument)
        r = db.row(
            "SELECT min(time_s) AS lo, max(time_s) AS hi FROM images WHERE instrument = ? "
            "AND plate = ? AND well = ? AND superseded_by IS NULL",
            (who, plate, well),
        )
        basis = _well_basis(db, who, plate, well)
    return (None, None, basis) if r is None else (r["lo"], r["hi"], basis)


def labelled_images(
    db: Database,
    plates: Sequence[str] | None = None,
    *,
    include_excluded: bool = False,
    instrument: str | None = None,
) -> list[LabelledImage]:
    """Every current analysed image that a label covers, with that label, by instrument,
    plate, well, time and field (of ``plates``, else every plate; of ``instrument``, else
    every instrument). ``excluded`` images are left out unless asked for."""
    with snapshot(db):
        labels = [
            _label(r)
            for r in db.rows("SELECT * FROM labels WHERE undone_at IS NULL ORDER BY id")
            if (plates is None or r["plate"] in plates)
            and (instrument is None or r["instrument"] == instrument)
        ]
        by_well: dict[tuple[str, str, str], list[LabelRecord]] = {}
        for lab in labels:
            by_well.setdefault((lab.instrument, lab.plate, lab.well), []).append(lab)
        out: list[LabelledImage] = []
        for (who, plate, well), well_labels in sorted(by_well.items()):
            for r in db.rows(
                "SELECT id, path, content_hash, size, field, timepoint, time_s, time_basis "
                "FROM images WHERE instrument = ? AND plate = ? AND well = ? "
                "AND superseded_by IS NULL AND status = 'done' "
                "ORDER BY coalesce(time_s, -1), field, id",
                (who, plate, well),
            ):
                found = label_at(well_labels, r["time_s"])
                if found is None or (found.label == "excluded" and not include_excluded):
                    continue
                out.append(
                    LabelledImage(
                        image_id=int(r["id"]),
                        path=r["path"],
                        content_hash=r["content_hash"],
                        size=r["size"],
                        plate=plate,
                        well=well,
                        field=r["field"],
                        timepoint=r["timepoint"],
                        time_s=r["time_s"],
                        time_basis=r["time_basis"],
                        label=found.label,
                        label_id=found.id,
                        instrument=who,
                    )
                )
    return out


def label_counts(images: Iterable[LabelledImage]) -> dict[str, Counter[str]]:
    """Images per label per plate (pure)."""
    out: dict[str, Counter[str]] = {}
    for img in images:
        out.setdefault(img.plate, Counter())[img.label] += 1
    return out
