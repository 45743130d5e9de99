"""Image versions and their predictions: the daemon's per-image writes and their reads.

One rule decides whether a file needs processing (:func:`already_recorded`): a version that
is *done* is never redone, even when the file is touched or copied again with the same
content; a version that *failed* is retried once the file changes (another size or mtime, or
another content). The daemon asks it before reading a file (without a content hash: size and
mtime decide) and the writer asks it again with the hash before recording a result.

A file is known by its instrument and its path: two instruments may write the same path (the
same export folder on two acquisition PCs), and each daemon asks only about its own files.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from stemwatch.core.platemeta import ImageLocation
from stemwatch.store.connection import Database, write
from stemwatch.store.errors import StoreError
from stemwatch.store.instruments import own, plate_instrument
from stemwatch.store.records import (
    Counts,
    FileVersion,
    ImageRecord,
    Prediction,
    RecentFailures,
    ThroughputBin,
)


def _now(now: float | None) -> float:
    return time.time() if now is None else now


# --------------------------------------------------------------------------------------------
# Which record is this file version?
# --------------------------------------------------------------------------------------------


def _same_stat(row: Any, v: FileVersion) -> bool:
    return bool(row["size"] == v.size and row["mtime_ns"] == v.mtime_ns)


def _hashes_differ(row: Any, v: FileVersion) -> bool:
    return (
        v.content_hash is not None
        and row["content_hash"] is not None
        and row["content_hash"] != v.content_hash
    )


def _same_version(row: Any, v: FileVersion) -> bool:
    """The identity of a version: the content hash when both sides know it, else size and
    mtime."""
    if v.content_hash is not None and row["content_hash"] is not None:
        return bool(row["content_hash"] == v.content_hash)
    return _same_stat(row, v)


def _is_recorded(row: Any, v: FileVersion) -> bool:
    if row["status"] == "done":
        return _same_version(row, v)
    if row["status"] == "failed":  # retried once the file changed in any way
        return _same_stat(row, v) and not _hashes_differ(row, v)
    return False


def _current_versions(db: Database, instrument: str, path: str) -> list[Any]:
    return db.rows(
        "SELECT id, status, size, mtime_ns, content_hash FROM images "
        "WHERE instrument = ? AND path = ? AND superseded_by IS NULL ORDER BY id DESC",
        (instrument, path),
    )


def already_recorded(
    db: Database, version: FileVersion, *, instrument: str | None = None
) -> int | None:
    """The id of this file version's record if it needs no processing, else None.

    Done: the same version (content hash when both are known, else size and mtime) is never
    redone. Failed: the same size and mtime (and content, when known) is not retried; any
    change to the file is. Asked of ``instrument``'s files (default: the handle's writer).
    """
    for row in _current_versions(db, instrument or db.writer, version.path):
        if _is_recorded(row, version):
            return int(row["id"])
    return None


def _find_version(db: Database, version: FileVersion) -> int | None:
    for row in _current_versions(db, db.writer, version.path):
        if _same_version(row, version):
            return int(row["id"])
    return None


# --------------------------------------------------------------------------------------------
# Writes (the daemon's writer thread)
# --------------------------------------------------------------------------------------------


def _location_values(location: ImageLocation | None) -> tuple[Any, ...]:
    if location is None:
        return (None,) * 7
    return (
        location.plate,
        location.well,
        location.field,
        location.timepoint,
        location.time_s,
        location.time_basis if location.time_s is not None else None,
        location.source,
    )


def _insert_image(
    db: Database,
    version: FileVersion,
    location: ImageLocation | None,
    *,
    status: str,
    error: str | None,
    attempts: int,
    t: float,
    unplaced_reason: str | None = None,
) -> int:
    """A new record for ``version``; earlier versions of the path point to it."""
    new_id = int(
        db.scalar(
            "INSERT INTO images (instrument, path, size, mtime_ns, content_hash, plate, well, "
            "field, timepoint, time_s, time_basis, location_source, status, error, attempts, "
            "unplaced_reason, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                db.writer,
                version.path,
                version.size,
                version.mtime_ns,
                version.content_hash,
                *_location_values(location),
                status,
                error,
                attempts,
                None if location is not None else unplaced_reason,
                t,
                t,
            ),
        )
    )
    db.execute(
        "UPDATE images SET superseded_by = ?, updated_at = ? "
        "WHERE instrument = ? AND path = ? AND id != ? AND superseded_by IS NULL",
        (new_id, t, db.writer, version.path, new_id),
    )
    return new_id


def _upsert_prediction(db: Database, image_id: int, p: Prediction, t: float) -> None:
    db.execute(
        "INSERT INTO predictions (image_id, model_hash, probability, tile_mean, tile_sd, "
        "n_tiles, cam_png, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (image_id, model_hash) DO UPDATE SET probability = excluded.probability, "
        "tile_mean = excluded.tile_mean, tile_sd = excluded.tile_sd, "
        "n_tiles = excluded.n_tiles, cam_png = excluded.cam_png, "
        "created_at = excluded.created_at",
        (
            image_id,
            p.model_hash,
            float(p.probability),
            p.tile_mean,
            p.tile_sd,
            p.n_tiles,
            p.cam_png,
            t,
        ),
    )


def record_result(
    db: Database,
    version: FileVersion,
    location: ImageLocation | None,
    prediction: Prediction,
    *,
    unplaced_reason: str | None = None,
    now: float | None = None,
) -> int:
    """Record an analysed image version and its prediction in one transaction; its id.

    The same version again updates its record; a new version of a known path (the instrument
    rewrote the file) gets a new record and the older ones point to it (``superseded_by``):
    the history stays, only the newest counts. Without a ``location``, ``unplaced_reason``
    says why no plate or well was resolved (:func:`unplaced_images` lists them).
    """
    t = _now(now)
    loc = _location_values(location)
    why = None if location is not None else unplaced_reason

    def do(db: Database) -> int:
        db.lock("image", db.writer, version.path)
        image_id = _find_version(db, version)
        if image_id is None:
            image_id = _insert_image(
                db,
                version,
                location,
                status="done",
                error=None,
                attempts=0,
                t=t,
                unplaced_reason=why,
            )
        else:
            db.execute(
                "UPDATE images SET status = 'done', error = NULL, plate = coalesce(?, plate), "
                "well = coalesce(?, well), field = coalesce(?, field), "
                "timepoint = coalesce(?, timepoint), time_s = coalesce(?, time_s), "
                "time_basis = coalesce(?, time_basis), "
                "location_source = coalesce(?, location_source), "
                "content_hash = coalesce(content_hash, ?), "
                "unplaced_reason = CASE WHEN ? THEN NULL ELSE coalesce(?, unplaced_reason) END, "
                "updated_at = ? WHERE id = ?",
                (*loc, version.content_hash, loc[0] is not None, why, t, image_id),
            )
        _upsert_prediction(db, image_id, prediction, t)
        return image_id

    return write(db, do)


def record_prediction(
    db: Database, image_id: int, prediction: Prediction, *, now: float | None = None
) -> None:
    """Store another model's output for a recorded image (re-scoring) and mark it done."""
    t = _now(now)

    def do(db: Database) -> None:
        if db.row("SELECT 1 FROM images WHERE id = ?", (image_id,)) is None:
            raise StoreError(f"{db.source}: no image with id {image_id}; record it first")
        _upsert_prediction(db, image_id, prediction, t)
        db.execute(
            "UPDATE images SET status = 'done', error = NULL, updated_at = ? WHERE id = ?",
            (t, image_id),
        )

    write(db, do)


def record_failure(
    db: Database,
    version: FileVersion,
    *,
    reason: str,
    attempts: int,
    location: ImageLocation | None = None,
    now: float | None = None,
) -> int:
    """Mark this version of the file as failed with ``reason`` (recorded if new); its id."""
    t = _now(now)

    def do(db: Database) -> int:
        db.lock("image", db.writer, version.path)
        image_id = _find_version(db, version)
        if image_id is None:
            return _insert_image(
                db, version, location, status="failed", error=reason, attempts=attempts, t=t
            )
        db.execute(
            "UPDATE images SET status = 'failed', error = ?, attempts = ?, updated_at = ? "
            "WHERE id = ?",
            (reason, attempts, t, image_id),
        )
        return image_id

    return write(db, do)


# --------------------------------------------------------------------------------------------
# Reads (dashboard, `stemwatch status`, the onset detector)
# --------------------------------------------------------------------------------------------

_IMAGE_COLUMNS = (
    "i.id, i.instrument, i.path, i.plate, i.well, i.field, i.timepoint, i.time_s, "
    "i.time_basis, i.status, i.error, i.attempts, i.size, i.mtime_ns, i.content_hash, "
    "i.superseded_by, i.updated_at, "
    "p.probability, p.model_hash, p.tile_mean, p.tile_sd, p.n_tiles, "
    "i.unplaced_reason, p.cam_png IS NOT NULL AS has_cam"
)
# Each image with its latest prediction (highest id: the most recent model to score it)...
_WITH_LATEST_PREDICTION = (
    f"SELECT {_IMAGE_COLUMNS} FROM images i LEFT JOIN predictions p ON p.id = ("
    "SELECT max(id) FROM predictions WHERE image_id = i.id)"
)
# ...or with one model's prediction.
_WITH_MODEL_PREDICTION = (
    f"SELECT {_IMAGE_COLUMNS} FROM images i "
    "LEFT JOIN predictions p ON p.image_id = i.id AND p.model_hash = ?"
)


def _image(r: Any) -> ImageRecord:
    return ImageRecord(
        id=int(r["id"]),
        path=r["path"],
        plate=r["plate"],
        well=r["well"],
        field=r["field"],
        timepoint=r["timepoint"],
        time_s=r["time_s"],
        status=r["status"],
        error=r["error"],
        attempts=int(r["attempts"]),
        size=r["size"],
        mtime_ns=r["mtime_ns"],
        content_hash=r["content_hash"],
        superseded_by=r["superseded_by"],
        updated_at=float(r["updated_at"]),
        probability=r["probability"],
        model_hash=r["model_hash"],
        tile_mean=r["tile_mean"],
        tile_sd=r["tile_sd"],
        n_tiles=r["n_tiles"],
        has_cam=bool(r["has_cam"]),
        time_basis=r["time_basis"],
        instrument=r["instrument"],
        unplaced_reason=r["unplaced_reason"],
    )


def images_for_well(
    db: Database,
    plate: str,
    well: str,
    *,
    model_hash: str | None = None,
    include_superseded: bool = False,
    instrument: str | None = None,
) -> list[ImageRecord]:
    """The images of one well by time point then field, each with ``model_hash``'s
    prediction (None: its latest prediction, whichever model made it)."""
    who = plate_instrument(db, plate, instrument)
    if model_hash is None:
        sql, params = _WITH_LATEST_PREDICTION, [who, plate, well]
    else:
        sql, params = _WITH_MODEL_PREDICTION, [model_hash, who, plate, well]
    sql += " WHERE i.instrument = ? AND i.plate = ? AND i.well = ?"
    if not include_superseded:
        sql += " AND i.superseded_by IS NULL"
    sql += " ORDER BY coalesce(i.timepoint, -1), i.time_s, i.field, i.id"
    return [_image(r) for r in db.rows(sql, params)]


def recent_images(
    db: Database, *, limit: int = 10, instrument: str | None = None
) -> list[ImageRecord]:
    """The most recently updated current images (any status) of every instrument (or of
    ``instrument``), newest first."""
    where, params = _instrument_filter(instrument, "i.")
    sql = (
        _WITH_LATEST_PREDICTION
        + f" WHERE i.superseded_by IS NULL{where} ORDER BY i.updated_at DESC, i.id DESC LIMIT ?"
    )
    return [_image(r) for r in db.rows(sql, (*params, int(limit)))]


def _instrument_filter(instrument: str | None, prefix: str = "") -> tuple[str, tuple[str, ...]]:
    """`` AND instrument = ?`` and its parameter, or nothing for every instrument."""
    if instrument is None:
        return "", ()
    return f" AND {prefix}instrument = ?", (instrument,)


def cam_png(db: Database, image_id: int) -> bytes | None:
    """The activation-map thumbnail (PNG bytes) of an image's latest prediction, if any."""
    png = db.scalar(
        "SELECT cam_png FROM predictions WHERE image_id = ? ORDER BY id DESC LIMIT 1",
        (image_id,),
    )
    return None if png is None else bytes(png)


def counts(db: Database, plate: str | None = None, *, instrument: str | None = None) -> Counts:
    """How many current images of ``plate`` (None: of every plate) on ``instrument`` (None:
    on every instrument) are done and failed, and how many older versions were superseded."""
    where, params = _instrument_filter(instrument)
    if plate is not None:
        where, params = where + " AND plate = ?", (*params, plate)
    r = db.row(
        "SELECT count(*) FILTER (WHERE superseded_by IS NULL AND status = 'done') AS done, "
        "count(*) FILTER (WHERE superseded_by IS NULL AND status = 'failed') AS failed, "
        "count(*) FILTER (WHERE superseded_by IS NOT NULL) AS superseded "
        f"FROM images WHERE 1 = 1{where}",
        params,
    )
    assert r is not None
    return Counts(done=int(r["done"]), failed=int(r["failed"]), superseded=int(r["superseded"]))


def prediction_times(db: Database) -> list[tuple[str, float]]:
    """(path, wall-clock time it was scored) of every prediction (benchmarks)."""
    return [
        (str(r[0]), float(r[1]))
        for r in db.rows(
            "SELECT i.path, p.created_at FROM predictions p JOIN images i ON i.id = p.image_id"
        )
    ]


# --------------------------------------------------------------------------------------------
# What the instrument checks ask (alerts)
# --------------------------------------------------------------------------------------------


def typical_field_interval_s(
    db: Database, *, recent: int = 5000, instrument: str | None = None
) -> float | None:
    """Median gap between successive images of one field over the ``recent`` newest images
    of the instrument (``instrument``, else the handle's; a facility handle: all).

    Per field, not across the plate: a scan of a whole plate takes minutes, so gaps between
    any two images say nothing about the time-lapse interval.
    """
    where, params = _instrument_filter(own(db, instrument))
    gaps = [
        float(r[0])
        for r in db.rows(
            "SELECT time_s - lag(time_s) OVER ("
            "  PARTITION BY instrument, plate, well, field ORDER BY time_s) AS gap "
            f"FROM images WHERE time_s IS NOT NULL AND superseded_by IS NULL{where} "
            "ORDER BY created_at DESC LIMIT ?",
            (*params, int(recent)),
        )
        if r[0] is not None and r[0] > 0
    ]
    return statistics.median(gaps) if gaps else None


def last_image_arrival(db: Database, *, instrument: str | None = None) -> float | None:
    """When the instrument's newest image record was created (wall clock), None before the
    first (``instrument``, else the handle's; a facility handle: any instrument's)."""
    where, params = _instrument_filter(own(db, instrument))
    last = db.scalar(f"SELECT max(created_at) FROM images WHERE 1 = 1{where}", params)
    return None if last is None else float(last)


def recent_failures(db: Database, since: float, *, instrument: str | None = None) -> RecentFailures:
    """The instrument's current images that failed since ``since`` (by last update), and its
    latest failure (``instrument``, else the handle's; a facility handle: all)."""
    where, params = _instrument_filter(own(db, instrument))
    n = int(
        db.scalar(
            "SELECT count(*) FROM images WHERE status = 'failed' AND superseded_by IS NULL "
            f"AND updated_at >= ?{where}",
            (since, *params),
        )
    )
    last = db.row(
        f"SELECT path, error FROM images WHERE status = 'failed'{where} "
        "ORDER BY updated_at DESC, id DESC LIMIT 1",
        params,
    )
    if last is None:
        return RecentFailures(n)
    return RecentFailures(n, last["path"], last["error"])


# --------------------------------------------------------------------------------------------
# What the dashboard's instrument page asks
# --------------------------------------------------------------------------------------------


def unplaced_images(
    db: Database, *, limit: int = 200, instrument: str | None = None
) -> list[ImageRecord]:
    """Current images that got no plate or well (any status) of every instrument (or of
    ``instrument``), newest first, each with why (``unplaced_reason``; ``error`` for a failed
    one)."""
    where, params = _instrument_filter(instrument, "i.")
    sql = (
        _WITH_LATEST_PREDICTION + " WHERE i.superseded_by IS NULL AND "
        f"(i.plate IS NULL OR i.well IS NULL){where} "
        "ORDER BY i.updated_at DESC, i.id DESC LIMIT ?"
    )
    return [_image(r) for r in db.rows(sql, (*params, int(limit)))]


def count_unplaced(db: Database, *, instrument: str | None = None) -> int:
    """How many current images of every instrument (or of ``instrument``) got no plate or
    well."""
    where, params = _instrument_filter(instrument)
    return int(
        db.scalar(
            "SELECT count(*) FROM images WHERE superseded_by IS NULL "
            f"AND (plate IS NULL OR well IS NULL){where}",
            params,
        )
    )


def failed_images(
    db: Database, *, since: float | None = None, limit: int = 200, instrument: str | None = None
) -> list[ImageRecord]:
    """Current images of every instrument (or of ``instrument``) that failed (last updated
    since ``since``), newest first, with their reason in ``error``."""
    where, params = _instrument_filter(instrument, "i.")
    sql = (
        _WITH_LATEST_PREDICTION + " WHERE i.superseded_by IS NULL AND i.status = 'failed' "
        f"AND i.updated_at >= ?{where} ORDER BY i.updated_at DESC, i.id DESC LIMIT ?"
    )
    return [
        _image(r) for r in db.rows(sql, (since if since is not None else 0.0, *params, int(limit)))
    ]


def throughput(
    db: Database,
    *,
    since: float,
    until: float | None = None,
    bin_s: float = 3600.0,
    instrument: str | None = None,
) -> list[ThroughputBin]:
    """Images scored (predictions made) and images failed per ``bin_s`` of wall-clock time
    from ``since`` to ``until`` (empty bins up to it included; None: to the latest), oldest
    first, on every instrument (or on ``instrument``)."""
    if bin_s <= 0:
        raise ValueError(f"bin_s={bin_s}; use a positive number of seconds")
    end = float("inf") if until is None else until
    # floor(), not CAST(... AS INTEGER): PostgreSQL's cast rounds where SQLite's truncates
    scored_sql: str
    scored_params: tuple[object, ...]
    if instrument is None:
        scored_sql, scored_params = (
            "SELECT floor((created_at - ?) / ?) AS b, count(*) FROM predictions "
            "WHERE created_at >= ? AND created_at <= ? GROUP BY b",
            (since, bin_s, since, end),
        )
    else:
        scored_sql, scored_params = (
            "SELECT floor((p.created_at - ?) / ?) AS b, count(*) FROM predictions p "
            "JOIN images i ON i.id = p.image_id WHERE p.created_at >= ? AND p.created_at <= ? "
            "AND i.instrument = ? GROUP BY b",
            (since, bin_s, since, end, instrument),
        )
    scored = {int(r[0]): int(r[1]) for r in db.rows(scored_sql, scored_params)}
    where, params = _instrument_filter(instrument)
    failed = {
        int(r[0]): int(r[1])
        for r in db.rows(
            "SELECT floor((updated_at - ?) / ?) AS b, count(*) FROM images "
            "WHERE status = 'failed' AND superseded_by IS NULL AND updated_at >= ? "
            f"AND updated_at <= ?{where} GROUP BY b",
            (since, bin_s, since, end, *params),
        )
    }
    last = max([*scored, *failed], default=-1)
    if until is not None:
        last = max(last, int((until - since) // bin_s))
    return [
        ThroughputBin(since + b * bin_s, scored.get(b, 0), failed.get(b, 0))
        for b in range(last + 1)
    ]
