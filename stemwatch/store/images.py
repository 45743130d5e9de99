"""Image versions and their predictions: the daemon's per-image writes and their reads.

One rule decides whether a file needs processing (:func:`recorded_version`,
:func:`already_recorded`):

* a version that is *done* is never redone, even when the file is touched or copied again
  with the same content;
* a version that *failed* is read again once the file changes (another size, mtime or ctime,
  or another content) and, when the failure was transient (``retry_at``), after that time
  even unchanged; it is never forgotten, across restarts too;
* a file *skipped* on purpose (an analysis output, a format that is not read, a channel not
  selected: :func:`record_skipped`) is not reconsidered until it changes.

The daemon asks before reading a file (without a content hash: size, mtime and ctime decide)
and the writer asks again with the hash before recording a result. A file is known by its
instrument and its path: two instruments may write the same path (the same export folder on
two acquisition PCs), and each daemon asks only about its own files. A version is identified
by its content hash when both sides know it, else by size, mtime and (when both know it)
ctime: a rewrite that keeps size and mtime still changes the ctime, so it is read again and
its hash decides.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from stemwatch.core.paths import path_text, printable
from stemwatch.core.platemeta import ImageLocation
from stemwatch.store.connection import Database, write
from stemwatch.store.errors import StoreError
from stemwatch.store.instruments import own, plate_instrument
from stemwatch.store.models import daemon_model_sql
from stemwatch.store.records import (
    Counts,
    DomainSummary,
    DomainWindow,
    FileVersion,
    ImageRecord,
    MovedImage,
    Prediction,
    RecentFailures,
    RecordedVersion,
    SkippedCount,
    ThroughputBin,
    WellFlags,
)


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _key(path: str) -> str:
    """The text a path is stored under (bytes that are not UTF-8 escaped)."""
    return path_text(path)


# --------------------------------------------------------------------------------------------
# Which record is this file version?
# --------------------------------------------------------------------------------------------


def _same_stat(row: Any, v: FileVersion) -> bool:
    if row["size"] != v.size or row["mtime_ns"] != v.mtime_ns:
        return False
    known = row["ctime_ns"] is not None and v.ctime_ns is not None
    return not known or bool(row["ctime_ns"] == v.ctime_ns)


def _hashes_differ(row: Any, v: FileVersion) -> bool:
    return (
        v.content_hash is not None
        and row["content_hash"] is not None
        and row["content_hash"] != v.content_hash
    )


def _same_version(row: Any, v: FileVersion) -> bool:
    """The identity of a version: the content hash when both sides know it, else size and
    mtime (and ctime when both know it)."""
    if v.content_hash is not None and row["content_hash"] is not None:
        return bool(row["content_hash"] == v.content_hash)
    return _same_stat(row, v)


def _is_recorded(row: Any, v: FileVersion, now: float) -> bool:
    if row["status"] == "done":
        return _same_version(row, v)
    if row["status"] == "failed":  # retried once the file changed in any way, or when due
        if row["retry_at"] is not None and row["retry_at"] <= now:
            return False
        return _same_stat(row, v) and not _hashes_differ(row, v)
    return False


def _current_versions(db: Database, instrument: str, path: str) -> list[Any]:
    return db.rows(
        "SELECT id, status, size, mtime_ns, ctime_ns, content_hash, retry_at FROM images "
        "WHERE instrument = ? AND path = ? AND superseded_by IS NULL ORDER BY id DESC",
        (instrument, _key(path)),
    )


def recorded_version(
    db: Database,
    version: FileVersion,
    *,
    instrument: str | None = None,
    now: float | None = None,
) -> RecordedVersion | None:
    """This file version's record if it needs no processing now, else None.

    Done: the same version is never redone. Failed: the same size, mtime and ctime (and
    content, when known) is not retried, unless its ``retry_at`` has come; any change to the
    file is. Skipped: not reconsidered while size, mtime and ctime stay the same. The result
    says which, and when a transient failure is due again (``retry_at``). Asked of
    ``instrument``'s files (default: the handle's writer).
    """
    t = _now(now)
    who = instrument or db.writer
    for row in _current_versions(db, who, version.path):
        if _is_recorded(row, version, t):
            return RecordedVersion(int(row["id"]), row["status"], row["retry_at"])
    skipped = db.row(
        "SELECT size, mtime_ns, ctime_ns, kind FROM skipped_files "
        "WHERE instrument = ? AND path = ?",
        (who, _key(version.path)),
    )
    if skipped is not None and _same_stat(skipped, version):
        return RecordedVersion(None, "skipped", None, skipped["kind"])
    return None


def already_recorded(
    db: Database,
    version: FileVersion,
    *,
    instrument: str | None = None,
    now: float | None = None,
) -> int | None:
    """The id of this file version's image record if it needs no processing, else None
    (:func:`recorded_version` without the skipped files)."""
    found = recorded_version(db, version, instrument=instrument, now=now)
    return found.image_id if found is not None else None


def _find_version(db: Database, version: FileVersion) -> int | None:
    for row in _current_versions(db, db.writer, version.path):
        if _same_version(row, version):
            return int(row["id"])
    return None


def moved_from(db: Database, content_hash: str, path: str) -> list[MovedImage]:
    """Current done records of the same content at *other* paths, newest first: the caller
    checks which of those paths no longer exist (the file was moved or renamed)."""
    return [
        MovedImage(int(r["id"]), r["path"], r["plate"], r["well"])
        for r in db.rows(
            "SELECT id, path, plate, well FROM images WHERE instrument = ? AND content_hash = ? "
            "AND path != ? AND status = 'done' AND superseded_by IS NULL ORDER BY id DESC",
            (db.writer, content_hash, _key(path)),
        )
    ]


# --------------------------------------------------------------------------------------------
# Writes (the daemon's writer thread)
# --------------------------------------------------------------------------------------------

_LOCATION_COLUMNS = (
    "plate, well, field, timepoint, time_s, time_basis, location_source, channel, channel_name, z"
)


def _location_values(location: ImageLocation | None) -> tuple[Any, ...]:
    if location is None:
        return (None,) * 10
    return (
        printable(location.plate),
        location.well,
        location.field,
        location.timepoint,
        location.time_s,
        location.time_basis if location.time_s is not None else None,
        location.source,
        location.channel,
        None if location.channel_name is None else printable(location.channel_name),
        location.z,
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
    retry_at: float | None = None,
    unplaced_reason: str | None = None,
) -> int:
    """A new record for ``version``; earlier versions of the path point to it."""
    path = _key(version.path)
    new_id = int(
        db.scalar(
            "INSERT INTO images (instrument, path, size, mtime_ns, ctime_ns, content_hash, "
            f"{_LOCATION_COLUMNS}, status, error, attempts, retry_at, unplaced_reason, "
            "created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING id",
            (
                db.writer,
                path,
                version.size,
                version.mtime_ns,
                version.ctime_ns,
                version.content_hash,
                *_location_values(location),
                status,
                None if error is None else printable(error),
                attempts,
                retry_at,
                None
                if location is not None or unplaced_reason is None
                else printable(unplaced_reason),
                t,
                t,
            ),
        )
    )
    db.execute(
        "UPDATE images SET superseded_by = ?, updated_at = ? "
        "WHERE instrument = ? AND path = ? AND id != ? AND superseded_by IS NULL",
        (new_id, t, db.writer, path, new_id),
    )
    return new_id


def _upsert_prediction(db: Database, image_id: int, p: Prediction, t: float) -> None:
    db.execute(
        "INSERT INTO predictions (image_id, model_hash, probability, tile_mean, tile_sd, "
        "n_tiles, cam_png, domain_score, out_of_domain, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (image_id, model_hash) DO UPDATE SET probability = excluded.probability, "
        "tile_mean = excluded.tile_mean, tile_sd = excluded.tile_sd, "
        "n_tiles = excluded.n_tiles, cam_png = excluded.cam_png, "
        "domain_score = excluded.domain_score, out_of_domain = excluded.out_of_domain, "
        "created_at = excluded.created_at",
        (
            image_id,
            p.model_hash,
            float(p.probability),
            p.tile_mean,
            p.tile_sd,
            p.n_tiles,
            p.cam_png,
            None if p.domain_score is None else float(p.domain_score),
            None if p.out_of_domain is None else int(p.out_of_domain),
            t,
        ),
    )


def _update_location(db: Database, image_id: int, location: ImageLocation | None) -> None:
    db.execute(
        "UPDATE images SET plate = coalesce(?, plate), well = coalesce(?, well), "
        "field = coalesce(?, field), timepoint = coalesce(?, timepoint), "
        "time_s = coalesce(?, time_s), time_basis = coalesce(?, time_basis), "
        "location_source = coalesce(?, location_source), channel = coalesce(?, channel), "
        "channel_name = coalesce(?, channel_name), z = coalesce(?, z) WHERE id = ?",
        (*_location_values(location), image_id),
    )


def _record_done(
    db: Database,
    version: FileVersion,
    location: ImageLocation | None,
    t: float,
    *,
    quality: str | None = None,
    unplaced_reason: str | None = None,
) -> int:
    """This version's record, marked done (inserted if new), with ``quality`` (why a frame that
    was read was not analysed; None clears it); no longer a skipped file. Inside the caller's
    transaction."""
    why = None if location is not None else unplaced_reason
    bad = None if quality is None else printable(quality)
    db.lock("image", db.writer, _key(version.path))
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
        db.execute("UPDATE images SET quality = ? WHERE id = ?", (bad, image_id))
    else:
        _update_location(db, image_id, location)
        db.execute(
            "UPDATE images SET status = 'done', error = NULL, retry_at = NULL, quality = ?, "
            "content_hash = coalesce(content_hash, ?), size = ?, mtime_ns = ?, ctime_ns = ?, "
            "unplaced_reason = CASE WHEN ? THEN NULL ELSE coalesce(?, unplaced_reason) END, "
            "updated_at = ? WHERE id = ?",
            (
                bad,
                version.content_hash,
                version.size,
                version.mtime_ns,
                version.ctime_ns,
                location is not None,
                None if why is None else printable(why),
                t,
                image_id,
            ),
        )
    db.execute(
        "DELETE FROM skipped_files WHERE instrument = ? AND path = ?",
        (db.writer, _key(version.path)),
    )
    return image_id


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

    def do(db: Database) -> int:
        image_id = _record_done(db, version, location, t, unplaced_reason=unplaced_reason)
        _upsert_prediction(db, image_id, prediction, t)
        return image_id

    return write(db, do)


def refresh_version(db: Database, image_id: int, version: FileVersion) -> None:
    """The file of a done record was touched (same content, new mtime or ctime): remember its
    new size, mtime and ctime so the next look at it needs no read."""
    write(
        db,
        lambda db: db.execute(
            "UPDATE images SET size = ?, mtime_ns = ?, ctime_ns = ? WHERE id = ?",
            (version.size, version.mtime_ns, version.ctime_ns, image_id),
        ),
    )


def record_move(
    db: Database,
    image_id: int,
    version: FileVersion,
    location: ImageLocation | None,
    *,
    now: float | None = None,
) -> None:
    """The file of record ``image_id`` was moved or renamed to ``version.path`` (same
    content, the old path is gone): the record follows it, with its prediction; the old path
    no longer counts. A record at the new path is superseded by it."""
    t = _now(now)
    path = _key(version.path)

    def do(db: Database) -> None:
        db.lock("image", db.writer, _key(version.path))
        db.execute(
            "UPDATE images SET superseded_by = ?, updated_at = ? "
            "WHERE instrument = ? AND path = ? AND id != ? AND superseded_by IS NULL",
            (image_id, t, db.writer, path, image_id),
        )
        db.execute(
            "UPDATE images SET path = ?, size = ?, mtime_ns = ?, ctime_ns = ?, updated_at = ? "
            "WHERE id = ?",
            (path, version.size, version.mtime_ns, version.ctime_ns, t, image_id),
        )
        if location is not None:
            db.execute(
                f"UPDATE images SET ({_LOCATION_COLUMNS}) = "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) WHERE id = ?",
                (*_location_values(location), image_id),
            )
        db.execute("DELETE FROM skipped_files WHERE instrument = ? AND path = ?", (db.writer, path))

    write(db, do)


def record_failure(
    db: Database,
    version: FileVersion,
    *,
    reason: str,
    attempts: int,
    location: ImageLocation | None = None,
    retry_at: float | None = None,
    now: float | None = None,
) -> int:
    """Mark this version of the file as failed with ``reason`` (recorded if new); its id.

    ``retry_at``: a transient failure, read again after this wall-clock time even when the
    file does not change (None: only once it changes).
    """
    t = _now(now)

    def do(db: Database) -> int:
        db.lock("image", db.writer, _key(version.path))
        image_id = _find_version(db, version)
        if image_id is None:
            return _insert_image(
                db,
                version,
                location,
                status="failed",
                error=reason,
                attempts=attempts,
                t=t,
                retry_at=retry_at,
            )
        _update_location(db, image_id, location)
        db.execute(
            "UPDATE images SET status = 'failed', error = ?, attempts = ?, quality = NULL, "
            "retry_at = ?, ctime_ns = coalesce(?, ctime_ns), updated_at = ? WHERE id = ?",
            (printable(reason), attempts, retry_at, version.ctime_ns, t, image_id),
        )
        return image_id

    return write(db, do)


def record_skipped(
    db: Database,
    version: FileVersion,
    *,
    kind: str,
    reason: str,
    location: ImageLocation | None = None,
    now: float | None = None,
) -> None:
    """Record that this file is not analysed on purpose, and why (``kind``: ``ignored`` for
    analysis outputs and unselected channels, ``unsupported`` for formats not read). One row
    per path: the latest decision."""
    t = _now(now)
    loc = _location_values(location)
    plate, well, fld, timepoint = loc[0], loc[1], loc[2], loc[3]
    channel, channel_name, z = loc[7], loc[8], loc[9]
    write(
        db,
        lambda db: db.execute(
            "INSERT INTO skipped_files (instrument, path, size, mtime_ns, ctime_ns, kind, reason, "
            "plate, well, field, timepoint, channel, channel_name, z, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (instrument, path) DO UPDATE SET size = excluded.size, "
            "mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns, kind = excluded.kind, "
            "reason = excluded.reason, plate = excluded.plate, well = excluded.well, "
            "field = excluded.field, timepoint = excluded.timepoint, "
            "channel = excluded.channel, channel_name = excluded.channel_name, z = excluded.z, "
            "updated_at = excluded.updated_at",
            (
                db.writer,
                _key(version.path),
                version.size,
                version.mtime_ns,
                version.ctime_ns,
                kind,
                printable(reason),
                plate,
                well,
                fld,
                timepoint,
                channel,
                channel_name,
                z,
                t,
                t,
            ),
        ),
    )


def skipped_counts(
    db: Database, *, limit: int = 5, instrument: str | None = None
) -> list[SkippedCount]:
    """Files skipped on purpose, by kind and reason, most frequent first (of every
    instrument, or of ``instrument``)."""
    where, params = _instrument_filter(instrument)
    return [
        SkippedCount(r["kind"], r["reason"], int(r["n"]), r["path"])
        for r in db.rows(
            "SELECT kind, reason, count(*) AS n, max(path) AS path FROM skipped_files "
            f"WHERE 1 = 1{where} GROUP BY kind, reason ORDER BY count(*) DESC, kind LIMIT ?",
            (*params, int(limit)),
        )
    ]


def skipped_file(
    db: Database, path: str, *, instrument: str | None = None
) -> tuple[str, str] | None:
    """(kind, reason) of a file the instrument skipped (default: the handle's writer)."""
    r = db.row(
        "SELECT kind, reason FROM skipped_files WHERE instrument = ? AND path = ?",
        (instrument or db.writer, _key(path)),
    )
    return None if r is None else (r["kind"], r["reason"])


def record_quality_issue(
    db: Database,
    version: FileVersion,
    location: ImageLocation | None,
    *,
    reason: str,
    unplaced_reason: str | None = None,
    now: float | None = None,
) -> int:
    """Record a frame that was read but not analysed (blank, saturated, all-NaN: ``reason``)
    in one transaction; its id. It is done (not retried while the file stays the same), has
    no prediction and so never enters a well's series."""
    t = _now(now)
    return write(
        db,
        lambda db: _record_done(
            db, version, location, t, quality=reason, unplaced_reason=unplaced_reason
        ),
    )


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


# --------------------------------------------------------------------------------------------
# Reads (dashboard, `stemwatch status`, the onset detector)
# --------------------------------------------------------------------------------------------

_IMAGE_COLUMNS = (
    "i.id, i.instrument, i.path, i.plate, i.well, i.field, i.timepoint, i.time_s, "
    "i.time_basis, i.status, i.error, i.attempts, i.size, i.mtime_ns, i.content_hash, "
    "i.superseded_by, i.updated_at, i.channel, i.channel_name, i.z, i.retry_at, "
    "i.quality, p.probability, p.model_hash, p.tile_mean, p.tile_sd, p.n_tiles, "
    "i.unplaced_reason, p.cam_png IS NOT NULL AS has_cam, p.domain_score, p.out_of_domain"
)
# Each image with the daemon's current model's prediction, else its latest (a re-analysis
# with another model never takes over the default view)...
_SHOWN_PREDICTION = (
    "LEFT JOIN predictions p ON p.id = coalesce(("
    "SELECT q.id FROM predictions q WHERE q.image_id = i.id "
    f"AND q.model_hash = {daemon_model_sql('i.instrument')}), ("
    "SELECT max(q.id) FROM predictions q WHERE q.image_id = i.id))"
)
_WITH_LATEST_PREDICTION = f"SELECT {_IMAGE_COLUMNS} FROM images i {_SHOWN_PREDICTION}"
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
        channel=r["channel"],
        channel_name=r["channel_name"],
        z=r["z"],
        retry_at=r["retry_at"],
        unplaced_reason=r["unplaced_reason"],
        quality=r["quality"],
        domain_score=r["domain_score"],
        out_of_domain=None if r["out_of_domain"] is None else bool(r["out_of_domain"]),
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
    prediction (None: the current model's of the instrument's daemon, else the latest)."""
    who = plate_instrument(db, plate, instrument)
    if model_hash is None:
        sql, params = _WITH_LATEST_PREDICTION, [who, plate, well]
    else:
        sql, params = _WITH_MODEL_PREDICTION, [model_hash, who, plate, well]
    sql += " WHERE i.instrument = ? AND i.plate = ? AND i.well = ?"
    if not include_superseded:
        sql += " AND i.superseded_by IS NULL"
    sql += " ORDER BY coalesce(i.timepoint, -1), i.time_s, i.field, i.channel, i.z, i.id"
    return [_image(r) for r in db.rows(sql, params)]


def image_record(
    db: Database, image_id: int, *, model_hash: str | None = None
) -> ImageRecord | None:
    """One image record by id with ``model_hash``'s prediction (None: its latest), as
    :func:`images_for_well` gives it; None when there is no such record."""
    params: tuple[Any, ...] = (image_id,)
    sql = _WITH_LATEST_PREDICTION
    if model_hash is not None:
        sql, params = _WITH_MODEL_PREDICTION, (model_hash, image_id)
    r = db.row(sql + " WHERE i.id = ?", params)
    return None if r is None else _image(r)


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


def cam_png(db: Database, image_id: int, *, model_hash: str | None = None) -> bytes | None:
    """The activation-map thumbnail (PNG bytes) of an image's prediction by ``model_hash``
    (None: the daemon's current model's, else the latest), if it has one."""
    if model_hash is not None:
        png = db.scalar(
            "SELECT cam_png FROM predictions WHERE image_id = ? AND model_hash = ?",
            (image_id, model_hash),
        )
    else:
        png = db.scalar(
            "SELECT cam_png FROM predictions WHERE id = coalesce(("
            "SELECT q.id FROM predictions q JOIN images i ON i.id = q.image_id "
            f"WHERE q.image_id = ? AND q.model_hash = {daemon_model_sql('i.instrument')}), ("
            "SELECT max(q.id) FROM predictions q WHERE q.image_id = ?))",
            (image_id, image_id),
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


# -- the domain check: flagged frames, per plate and for the alert rule ------------------------

_FLAGGED = "(i.quality IS NOT NULL OR p.out_of_domain = 1)"


def flagged_images(
    db: Database,
    plate: str | None = None,
    *,
    instrument: str | None = None,
    limit: int = 100,
) -> list[ImageRecord]:
    """Current images that were not analysed (a ``quality`` reason) or whose latest prediction
    lies outside its model's training domain, newest first: of ``plate`` (None: every plate)
    on ``instrument`` (None: every instrument)."""
    where, params = _instrument_filter(instrument, "i.")
    if plate is not None:
        where, params = where + " AND i.plate = ?", (*params, plate)
    sql = (
        _WITH_LATEST_PREDICTION + f" WHERE i.superseded_by IS NULL AND {_FLAGGED}{where} "
        "ORDER BY i.updated_at DESC, i.id DESC LIMIT ?"
    )
    return [_image(r) for r in db.rows(sql, (*params, int(limit)))]


def domain_summary(db: Database, *, instrument: str | None = None) -> list[DomainSummary]:
    """Per plate (of every instrument, or of ``instrument``): its current images, how many
    were domain-scored, how many lay outside the domain, how many were bad frames."""
    where, params = _instrument_filter(instrument, "i.")
    rows = db.rows(
        "SELECT i.instrument, i.plate, count(*) AS n, "
        "count(p.domain_score) AS n_scored, "
        "count(*) FILTER (WHERE p.out_of_domain = 1) AS n_out, "
        "count(*) FILTER (WHERE i.quality IS NOT NULL) AS n_quality, "
        f"max(i.updated_at) FILTER (WHERE {_FLAGGED}) AS last_flagged "
        f"FROM images i {_SHOWN_PREDICTION} "
        f"WHERE i.superseded_by IS NULL AND i.plate IS NOT NULL{where} "
        "GROUP BY i.instrument, i.plate ORDER BY i.instrument, i.plate",
        params,
    )
    return [
        DomainSummary(
            plate=r["plate"],
            n_images=int(r["n"]),
            n_scored=int(r["n_scored"]),
            n_out_of_domain=int(r["n_out"]),
            n_quality=int(r["n_quality"]),
            last_flagged_at=r["last_flagged"],
            instrument=r["instrument"],
        )
        for r in rows
    ]


def well_flags(
    db: Database,
    plate: str,
    *,
    instrument: str | None = None,
    model_hash: str | None = None,
    time_tolerance_s: float = 600.0,
) -> list[WellFlags]:
    """The wells of ``plate`` with bad frames or out-of-domain images, by well: how many in
    all and how many at the well's newest time point (its highest time-point index; without
    indices, the images within ``time_tolerance_s`` of its newest image, as the onset detector
    groups them). Out of the domain by ``model_hash``'s predictions, else by the prediction an
    image shows (its instrument's daemon's model's, else the latest).

    Asked at every render of the plate view: the flagged images are found first, from the
    few rows the partial indexes ``images_quality`` and ``predictions_out_of_domain`` hold
    (a plate without any costs two index probes, not a pass over its images), the newest
    time point only of their wells."""
    who = plate_instrument(db, plate, instrument)
    current = (
        "i.instrument = ? AND i.plate = ? AND i.well IS NOT NULL AND i.superseded_by IS NULL "
        "AND i.status = 'done'"
    )
    first: tuple[str, ...] = ()
    join = _SHOWN_PREDICTION
    if model_hash is not None:
        join = "LEFT JOIN predictions p ON p.image_id = i.id AND p.model_hash = ?"
        first = (model_hash,)
    # every image that may be flagged: a bad frame of the plate, or any prediction outside
    # the domain (whether it is the one shown is checked below)
    candidates = (
        "SELECT id FROM images WHERE instrument = ? AND plate = ? AND quality IS NOT NULL "
        "UNION SELECT image_id FROM predictions WHERE out_of_domain = 1"
    )
    flagged = db.rows(
        "SELECT i.well, i.timepoint, i.time_s, i.quality, p.out_of_domain, p.domain_score "
        f"FROM ({candidates}) c JOIN images i ON i.id = c.id {join} "
        f"WHERE {current} AND (i.quality IS NOT NULL OR p.out_of_domain = 1)",
        (who, plate, *first, who, plate),
    )
    if not flagged:
        return []
    wells = sorted({str(r["well"]) for r in flagged})
    marks = ", ".join("?" for _ in wells)
    tol = float(time_tolerance_s)
    newest = {
        str(r["well"]): (r["tp"], r["t"], int(r["n"]))
        for r in db.rows(
            "SELECT n.well, n.tp, n.t, count(*) AS n FROM ("
            "SELECT i.well, max(i.timepoint) AS tp, max(i.time_s) AS t FROM images i "
            f"WHERE {current} AND i.well IN ({marks}) GROUP BY i.well) n "
            f"JOIN images i ON i.well = n.well AND {current} "
            "AND ((n.tp IS NOT NULL AND i.timepoint = n.tp) "
            "OR (n.tp IS NULL AND i.time_s >= n.t - ?)) "
            "GROUP BY n.well, n.tp, n.t",
            (who, plate, *wells, who, plate, tol),
        )
    }
    out = []
    for well in wells:
        rows = [r for r in flagged if r["well"] == well]
        tp, t, n_latest = newest.get(well, (None, None, 0))
        latest = [
            r
            for r in rows
            if (r["timepoint"] == tp if tp is not None else _within(r["time_s"], t, tol))
        ]
        bad = [r["quality"] for r in latest if r["quality"] is not None]
        scores = [float(r["domain_score"]) for r in latest if r["domain_score"] is not None]
        out.append(
            WellFlags(
                well=well,
                n_latest=n_latest,
                n_latest_out_of_domain=sum(1 for r in latest if r["out_of_domain"]),
                n_latest_quality=len(bad),
                n_out_of_domain=sum(1 for r in rows if r["out_of_domain"]),
                n_quality=sum(1 for r in rows if r["quality"] is not None),
                latest_quality=max(bad) if bad else None,
                latest_score=max(scores) if scores else None,
                instrument=who,
            )
        )
    return out


def _within(time_s: float | None, newest_s: float | None, tolerance_s: float) -> bool:
    return time_s is not None and newest_s is not None and time_s >= newest_s - tolerance_s


def domain_window(
    db: Database,
    plate: str,
    model_hash: str,
    *,
    last: int = 20,
    instrument: str | None = None,
) -> DomainWindow:
    """How many of the ``last`` newest domain-scored current images of ``plate`` lay outside
    ``model_hash``'s training domain (``instrument``, else the handle's)."""
    who = instrument or db.writer
    rows = db.rows(
        "SELECT p.out_of_domain, p.domain_score FROM predictions p "
        "JOIN images i ON i.id = p.image_id "
        "WHERE i.instrument = ? AND i.plate = ? AND p.model_hash = ? "
        "AND p.domain_score IS NOT NULL AND i.superseded_by IS NULL "
        "ORDER BY p.id DESC LIMIT ?",
        (who, plate, model_hash, int(last)),
    )
    outside = sorted(float(r[1]) for r in rows if r[0])
    return DomainWindow(
        n_scored=len(rows),
        n_out_of_domain=len(outside),
        median_out_score=float(statistics.median(outside)) if outside else None,
    )


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
    db: Database, *, recent: int = 5000, instrument: str | None = None, min_gap_s: float = 0.0
) -> float | None:
    """Median gap between successive images of one field over the ``recent`` newest images
    of the instrument (``instrument``, else the handle's; a facility handle: all).

    Per field (and channel and plane), not across the plate: a scan of a whole plate takes
    minutes, so gaps between any two images say nothing about the time-lapse interval. Only
    acquisition times count: images whose time is their file's mtime are left out (a bulk
    copy gives them mtimes milliseconds apart), and so are gaps shorter than ``min_gap_s``.
    """
    where, params = _instrument_filter(own(db, instrument))
    gaps = [
        float(r[0])
        for r in db.rows(
            "SELECT time_s - lag(time_s) OVER ("
            "  PARTITION BY instrument, plate, well, field, channel, z ORDER BY time_s) AS gap "
            "FROM images WHERE time_s IS NOT NULL AND superseded_by IS NULL "
            f"AND coalesce(time_basis, '') != 'mtime'{where} "
            "ORDER BY created_at DESC LIMIT ?",
            (*params, int(recent)),
        )
        if r[0] is not None and r[0] > 0 and r[0] >= min_gap_s
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
