"""The processing stages behind the watcher: decode -> infer -> store, on bounded queues.

* ``decode_workers`` threads (sized from the cores unless set: :mod:`monitor.workers`) take
  stable candidates and give each file one ingest step. The name is looked at first, before
  any byte is read: analysis outputs (masks, thumbnails, correction images), formats that are
  not read and channels not selected are recorded as skipped with the reason. Then the file
  is read once and hashed (a file moved or renamed after analysis is recognised by its
  content and its record follows it), its structure is checked
  (:func:`stemwatch.core.imaging.check_file`), its plate/well resolved, the plane to analyse
  chosen, its size checked against the limits, and only then decoded and cut into tiles with
  :func:`stemwatch.core.imaging.prepare` (the trainer's own preprocessing); a blank,
  saturated or all-NaN frame (:func:`stemwatch.core.quality.check_quality`) goes straight to
  the writer, unscored;
* ``inference_workers`` threads batch the tiles of several images into one onnxruntime call
  and, when the model has a CAM output, render each image's activation map as a small PNG;
  when the model carries a description of its training domain, each image is scored against
  it (:mod:`monitor.domain_check`);
* one writer thread owns the database connection: it stores each result once (image record and
  prediction in one transaction), updates the well's series and onset state (at a cost flat
  in the well's length: :mod:`monitor.wellseries`), records failures, skips, moves and model
  switches. When it cannot store (a full disk, a lock held elsewhere) it waits and retries,
  and says so in :attr:`Pipeline.writer_problem`; the heartbeat (:mod:`monitor.heartbeat`)
  runs apart and keeps reporting;
* one alert thread (:class:`~monitor.alert_worker.AlertWorker`) records and delivers onset
  alerts and runs the instrument checks.

Failures are told apart by what retrying can do (:class:`~stemwatch.core.errors.ImageReadError`
``failure``): *transient* ones (unreadable for a while) are retried with back-off, then
recorded as failed and read again every ``retry.recheck_failed_s`` until they succeed, across
restarts too; *incomplete* ones (cut off, as while being written) are retried
``retry.max_attempts`` times, then recorded as failed until the file changes; *permanent*
ones (above a limit, too small) are recorded at once. Every thread runs under a
:class:`~monitor.supervise.Supervisor`: one that dies stops the daemon with a non-zero exit.

Every queue is bounded, so a backlog of thousands of files costs a few images of memory. Each
finished candidate is counted once in :class:`~monitor.counts.Counts` and reported to the
daemon as an :class:`Outcome` through ``report``.

The model can be swapped while images flow (:meth:`Pipeline.swap_model`, promotion without a
restart): each image is decoded for, batched with and scored by the model that was current
when its decoding began, so the images in flight finish with the old model, the next ones
use the new one, and no image is scored twice or lost in between.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from monitor.alert_worker import AlertWorker
from monitor.alerts import Alerter
from monitor.config import MonitorConfig
from monitor.counts import Counts
from monitor.heartbeat import DaemonLoad
from monitor.inference import CUDA, LoadedModel, cam_mosaic, cam_png
from monitor.stability import FileStat, backoff_delay, stat_file
from monitor.supervise import Failure, Supervisor
from monitor.wellseries import WellSeries
from monitor.workers import WorkerPlan, plan_workers
from stemwatch import store
from stemwatch.core.aggregate import score_image
from stemwatch.core.cores import usable_cores
from stemwatch.core.domain import DomainScore
from stemwatch.core.errors import ImageReadError, PlateMetadataError, StemwatchError
from stemwatch.core.filekinds import non_image_output, unsupported_format
from stemwatch.core.imaging import (
    ImageFile,
    PlaneChoice,
    Tiles,
    TilingSpec,
    check_file,
    check_pixels,
    choose_plane,
    decode,
    hash_bytes,
    prepare,
    read_bytes,
    read_head,
    sniff,
)
from stemwatch.core.paths import path_text, printable
from stemwatch.core.platemeta import (
    IgnoredImageError,
    ImageLocation,
    UnresolvedImageError,
    channel_excluded,
    resolve,
    with_config,
)
from stemwatch.core.quality import check_quality

__all__ = ["Candidate", "DaemonLoad", "Outcome", "Pipeline"]

log = logging.getLogger(__name__)

OutcomeKind = Literal["done", "duplicate", "retry", "failed", "gone", "changed", "ignored", "moved"]


@dataclass(frozen=True)
class Candidate:
    """A file the stability tracker found complete, handed to the pipeline."""

    path: Path
    stat: FileStat
    attempts: int = 0  # failed attempts so far

    def version(self, content_hash: str | None = None) -> store.FileVersion:
        return store.FileVersion(
            str(self.path), self.stat.size, self.stat.mtime_ns, content_hash, self.stat.ctime_ns
        )


@dataclass(frozen=True)
class Outcome:
    """What became of one candidate (reported back to the daemon's loop).

    ``retry_in_s``: for ``retry``, when to try again; for ``failed``, when a transient
    failure is due to be read again (0: only once the file changes).
    """

    path: Path
    kind: OutcomeKind
    stat: FileStat | None = None
    attempts: int = 0
    reason: str = ""
    retry_in_s: float = 0.0
    image_id: int | None = None


@dataclass
class Prepared:
    candidate: Candidate
    content_hash: str
    location: ImageLocation | None
    tiles: Tiles
    model: LoadedModel  # decoded for this model's recipe: scored by it, whatever comes next
    unplaced_reason: str | None = None  # why there is no location, when there is none


@dataclass
class Scored:
    prepared: Prepared
    probabilities: np.ndarray  # positive-class probability of each tile
    cam_png: bytes | None = None
    domain: DomainScore | None = None  # None: the model has no domain description


@dataclass
class BadFrame:
    """A frame read but not analysed (blank, saturated, all-NaN): recorded, never scored."""

    candidate: Candidate
    content_hash: str
    location: ImageLocation | None
    reason: str
    unplaced_reason: str | None
    model: LoadedModel  # the daemon's model when it was read (its series gets updated)


@dataclass
class FinalFailure:
    candidate: Candidate
    reason: str
    attempts: int
    content_hash: str | None = None
    location: ImageLocation | None = None
    retry_in_s: float = 0.0  # transient: read again after this long even if unchanged


@dataclass(frozen=True)
class ModelSwitched:
    """The pipeline took ``model`` into use instead of ``previous`` (written by the writer)."""

    model: LoadedModel
    previous: LoadedModel | None
    reason: str
    detail: str = ""


@dataclass
class Skipped:
    candidate: Candidate
    kind: Literal["ignored", "unsupported"]
    reason: str
    location: ImageLocation | None = None


@dataclass
class Moved:
    candidate: Candidate
    content_hash: str
    moved: store.MovedImage
    location: ImageLocation | None


class PermanentImageError(ImageReadError):
    """The file is readable but can never be analysed as it is (e.g. smaller than one tile)."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(path, reason, failure="permanent")


class _SkipError(Exception):
    def __init__(
        self,
        kind: Literal["ignored", "unsupported"],
        reason: str,
        location: ImageLocation | None = None,
    ) -> None:
        super().__init__(reason)
        self.kind: Literal["ignored", "unsupported"] = kind
        self.reason = reason
        self.location = location


_STOP = object()


class Pipeline:
    """Decode, inference and writer threads joined by bounded queues."""

    def __init__(
        self,
        config: MonitorConfig,
        model: LoadedModel,
        db: store.Database,
        report: Callable[[Outcome], None],
        *,
        alerter: Alerter | None = None,
        counts: Counts | None = None,
        lookup: store.Database | None = None,
        supervisor: Supervisor | None = None,
        plan: WorkerPlan | None = None,
    ) -> None:
        self.config = config
        inf = config.inference
        self.plan = plan or plan_workers(inf, cores=usable_cores(), gpu=model.provider == CUDA)
        self.model = model
        self.db = db
        self.lookup = lookup  # read-only, shared by the decoders (files moved after analysis)
        self._report_to = report
        self.counts = counts if counts is not None else Counts()
        self.supervisor = supervisor or Supervisor(_log_only)
        self.alerter = AlertWorker(alerter, self.supervisor) if alerter is not None else None
        self.writer_problem: str | None = None  # why results cannot be stored right now
        self._well_series: dict[str, WellSeries] = {}  # per model; the writer's, like db
        self.work: queue.Queue[Any] = queue.Queue(maxsize=max(2, 2 * self.plan.decode_workers))
        self.ready: queue.Queue[Any] = queue.Queue(maxsize=inf.queue_images)
        self.writes: queue.Queue[Any] = queue.Queue(maxsize=2 * inf.queue_images)
        sup = self.supervisor
        self._decoders = [
            sup.thread(self._decode_loop, f"stemwatch-decode-{i}")
            for i in range(self.plan.decode_workers)
        ]
        self._inferers = [
            sup.thread(self._infer_loop, f"stemwatch-infer-{i}")
            for i in range(self.plan.inference_workers)
        ]
        self._writer = sup.thread(self._write_loop, "stemwatch-writer")
        self._abandon = threading.Event()
        self._started = False
        self._lookup_lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self.alerter is not None:
            self.alerter.start()
        for t in [*self._decoders, *self._inferers, self._writer]:
            t.start()
        self._started = True

    def report(self, outcome: Outcome) -> None:
        """Count ``outcome`` once, then hand it to the daemon."""
        self.counts.outcome(outcome.kind)
        self._report_to(outcome)

    def try_submit(self, candidate: Candidate) -> bool:
        """Queue a candidate without blocking; False when the pipeline is full (back-pressure)."""
        try:
            self.work.put_nowait(candidate)
        except queue.Full:
            return False
        return True

    def swap_model(self, model: LoadedModel, *, reason: str, detail: str = "") -> None:
        """Score images whose decoding starts from now on with ``model``; the images already
        decoded finish with the model they were decoded for. The writer records the switch."""
        previous, self.model = self.model, model
        self.writes.put(ModelSwitched(model, previous, reason, detail))

    def close(self, timeout_s: float = 30.0) -> None:
        """Finish what is queued, flush the writer, join every thread."""
        if not self._started:
            return
        self.supervisor.stopping.set()
        deadline = time.monotonic() + timeout_s
        for _ in self._decoders:
            _put(self.work, _STOP, deadline)
        for t in self._decoders:
            t.join(max(0.1, deadline - time.monotonic()))
        for _ in self._inferers:
            _put(self.ready, _STOP, deadline)
        for t in self._inferers:
            t.join(max(0.1, deadline - time.monotonic()))
        _put(self.writes, _STOP, deadline)
        self._writer.join(max(0.1, deadline - time.monotonic()))
        if self._writer.is_alive():
            log.error(
                "writer did not finish within %.0f s; abandoning unwritten results (they are "
                "redone at the next start)",
                timeout_s,
            )
            self._abandon.set()
            self._writer.join(5.0)
        if self.alerter is not None:
            self.alerter.close(max(5.0, deadline - time.monotonic()))
        self._started = False

    # -- decode --------------------------------------------------------------------------

    def _decode_loop(self) -> None:
        while True:
            item = self.work.get()
            if item is _STOP:
                return
            try:
                self._decode_one(item)
            except Exception as exc:  # a bug on one file must not kill the worker
                log.exception("%s: unexpected error while preparing", printable(item.path))
                reason = f"internal error while preparing ({type(exc).__name__}: {exc})"
                self._failed_attempt(item, ImageReadError(item.path, reason), None, None)

    def _decode_one(self, cand: Candidate) -> None:
        path = cand.path
        model = self.model  # this image is prepared for, and scored by, this model
        stat = stat_file(path)
        if stat is None:
            self._gone(cand)
            return
        if stat != cand.stat:
            self.report(Outcome(path, "changed", stat, cand.attempts))
            return
        digest: str | None = None
        location: ImageLocation | None = None
        unplaced: str | None = None
        try:
            self._skip_by_name(cand)  # before any byte is read
            self._check_size(cand)
            self._check_head(cand)  # junk is refused after 16 bytes, not a full read
            data = read_bytes(path)  # the only full read: everything below uses these bytes
            after = stat_file(path)
            if after != cand.stat:  # rewritten while we read it: read it again later
                self.report(Outcome(path, "changed", after, cand.attempts))
                return
            digest = hash_bytes(data)
            checked = check_file(path, data, max_pixels=self._max_pixels)
            plane = choose_plane(
                checked.ome_xml,
                filename=path.name,
                n_pages=checked.n_pages,
                channels=self.config.plate.channels,
                z_plane=self.config.plate.z_plane,
            )
            location, unplaced = self._locate(path, checked.ome_xml, plane)
            if self._moved(cand, digest, location):
                return
            self._check_dimensions(checked, plane, model.metadata.tiling)
            if plane.note:
                log.info("%s: %s", printable(path), plane.note)
            image = decode(checked, page=plane.page, max_pixels=self._max_pixels)
            issue = self._quality_issue(image.pixels, image.bit_depth)
            if issue is not None:
                log.warning("%s: not analysed: %s", printable(path), issue)
                self.writes.put(BadFrame(cand, digest, location, issue, unplaced, model))
                return
            tiles = prepare(image.pixels, model.metadata.normalisation, model.metadata.tiling)
        except _SkipError as skip:
            log.info("%s: not analysed (%s)", printable(path), skip.reason)
            self.writes.put(Skipped(cand, skip.kind, skip.reason, skip.location or location))
            return
        except ImageReadError as exc:
            if not path.exists():
                self._gone(cand)
                return
            self._failed_attempt(cand, exc, digest, location)
            return
        self.ready.put(Prepared(cand, digest, location, tiles, model, unplaced))

    def _quality_issue(self, pixels: np.ndarray, bit_depth: int) -> str | None:
        """Why this frame cannot be scored as cells (blank, saturated, all-NaN), or None."""
        quality = self.config.domain.quality
        if not quality.enabled:
            return None
        issue = check_quality(pixels, bit_depth=bit_depth, config=quality)
        return None if issue is None else str(issue)

    def _gone(self, cand: Candidate) -> None:
        log.warning("%s: gone before it was read (deleted or moved away)", printable(cand.path))
        self.report(Outcome(cand.path, "gone", attempts=cand.attempts))

    @property
    def _max_pixels(self) -> int:
        return int(self.config.watch.max_megapixels * 1e6)

    def _skip_by_name(self, cand: Candidate) -> None:
        """Analysis outputs, formats not read, channels not selected: decided by the name."""
        path = cand.path
        why = non_image_output(path)
        if why is not None:
            raise _SkipError("ignored", why)
        why = unsupported_format(path)
        if why is not None:
            raise _SkipError("unsupported", why, self._locate_by_name(path))
        location = self._locate_by_name(path)
        if location is not None:
            excluded = channel_excluded(location, self.config.plate.channels)
            if excluded is not None:
                raise _SkipError("ignored", excluded, location)

    def _locate_by_name(self, path: Path) -> ImageLocation | None:
        try:
            return resolve(path, **with_config(self.config.plate))
        except PlateMetadataError:
            return None

    def _check_size(self, cand: Candidate) -> None:
        limit_mb = self.config.watch.max_file_mb
        if cand.stat.size > limit_mb * 1e6:
            raise PermanentImageError(
                cand.path,
                f"file is {cand.stat.size / 1e6:.0f} MB, above watch.max_file_mb ({limit_mb:g} "
                "MB; each decode worker holds one whole file in memory): raise the limit if "
                "images this large are expected",
            )

    def _check_head(self, cand: Candidate) -> None:
        head = read_head(cand.path)
        try:
            sniff(cand.path, head)
        except ImageReadError as exc:
            if cand.path.suffix == "":  # no suffix and no image signature: not an image
                raise _SkipError(
                    "ignored", f"not an image: no suffix, and the content starts with {head!r}"
                ) from None
            raise exc

    def _check_dimensions(self, checked: ImageFile, plane: PlaneChoice, tiling: TilingSpec) -> None:
        """Limits on the plane, from what the file declares, before decoding it."""
        check_pixels(checked, plane.page, self._max_pixels)
        height, width = checked.plane_shape(plane.page)
        need = self.config.plate.min_image_size or tiling.tile_size * tiling.downsample
        if min(height, width) < need:
            raise PermanentImageError(
                checked.path,
                f"image is {width}x{height} px, smaller than {need} px (one "
                f"{tiling.tile_size}-px tile after downsampling x{tiling.downsample}); is this "
                "a thumbnail or the wrong channel?",
            )

    def _locate(
        self, path: Path, ome_xml: str | None, plane: PlaneChoice
    ) -> tuple[ImageLocation | None, str | None]:
        """The image's location, or None and why not (stored with the result)."""
        plate = self.config.plate
        try:
            loc = resolve(path, ome_xml=ome_xml, **with_config(plate))
        except IgnoredImageError as exc:
            raise _SkipError("ignored", exc.reason) from None
        except PlateMetadataError as exc:
            log.warning("%s: stored without plate/well (%s)", printable(path), exc)
            if isinstance(exc, UnresolvedImageError):  # the message without the path
                tried = "; tried: " + ", ".join(exc.tried) if exc.tried else ""
                return None, exc.reason + tried
            return None, str(exc)
        if plane.channel is not None or plane.z is not None:
            loc = _with_plane(loc, plane)
        excluded = channel_excluded(loc, plate.channels)
        if excluded is not None:
            raise _SkipError("ignored", excluded, loc)
        return loc, None

    def _moved(self, cand: Candidate, digest: str, location: ImageLocation | None) -> bool:
        """A done record of the same content whose file is gone: this file is that one,
        moved or renamed. Its record follows it (nothing is analysed twice)."""
        if self.lookup is None:
            return False
        try:
            with self._lookup_lock:
                candidates = store.moved_from(self.lookup, digest, str(cand.path))
        except StemwatchError as exc:
            log.warning("database: cannot look for a moved file (%s); analysing it", exc)
            return False
        for c in candidates:
            if "\\x" in c.path:  # a stored name with undecodable bytes: cannot check it
                continue
            if not os.path.lexists(c.path):
                self.writes.put(Moved(cand, digest, c, location))
                return True
        return False

    def _failed_attempt(
        self,
        cand: Candidate,
        exc: ImageReadError,
        digest: str | None,
        location: ImageLocation | None = None,
    ) -> None:
        attempts = cand.attempts + 1
        retry = self.config.retry
        reason = exc.reason
        if exc.failure == "permanent" or attempts >= retry.max_attempts:
            recheck = retry.recheck_failed_s if exc.failure == "transient" else 0.0
            log.warning(
                "%s: failed after %d attempt(s): %s%s",
                printable(cand.path),
                attempts,
                reason,
                f" (read again in {recheck:.0f} s)" if recheck else "",
            )
            self.writes.put(FinalFailure(cand, reason, attempts, digest, location, recheck))
            return
        delay = backoff_delay(attempts, retry.initial_backoff_s, retry.max_backoff_s)
        log.info(
            "%s: not readable yet (%s); attempt %d of %d, retry in %.1f s",
            printable(cand.path),
            reason,
            attempts,
            retry.max_attempts,
            delay,
        )
        self.report(
            Outcome(cand.path, "retry", cand.stat, attempts, reason=reason, retry_in_s=delay)
        )

    # -- inference -----------------------------------------------------------------------

    def _infer_loop(self) -> None:
        inf = self.config.inference
        stop = False
        carry: Prepared | None = None  # the first image of a new model: starts the next batch
        while not stop:
            first = carry if carry is not None else self.ready.get()
            carry = None
            if first is _STOP:
                return
            items: list[Prepared] = [first]
            n = len(first.tiles.data)
            deadline = time.monotonic() + inf.batch_wait_s
            while n < inf.batch_tiles:
                try:
                    item = self.ready.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                if item.model is not first.model:  # a batch never mixes models
                    carry = item
                    break
                items.append(item)
                n += len(item.tiles.data)
            self._infer_batch(items)

    def _infer_batch(self, items: list[Prepared]) -> None:
        model = items[0].model
        batch = np.concatenate([p.tiles.data for p in items], axis=0)
        t0 = time.perf_counter()
        try:
            step = self.config.inference.batch_tiles
            parts = [model.infer(batch[i : i + step]) for i in range(0, len(batch), step)]
            probs = np.concatenate([p.probabilities for p in parts])
            chunks = [p.cams for p in parts if p.cams is not None]
            cams = np.concatenate(chunks) if len(chunks) == len(parts) else None
            found = [p.features for p in parts if p.features is not None]
            feats = np.concatenate(found) if len(found) == len(parts) else None
        except Exception as exc:  # onnxruntime errors: record, read again later
            log.exception("inference failed on a batch of %d image(s)", len(items))
            for p in items:
                err = ImageReadError(
                    p.candidate.path, f"inference failed: {exc}", failure="transient"
                )
                self._failed_attempt(p.candidate, err, p.content_hash, p.location)
            return
        self.counts.add(infer_s=time.perf_counter() - t0, tiles=len(batch), batches=1)
        start = 0
        for p in items:
            n = len(p.tiles.data)
            png = None
            if cams is not None:
                png = self._cam_png(p, cams[start : start + n])
            domain = self._domain(p, None if feats is None else feats[start : start + n])
            self.writes.put(Scored(p, probs[start : start + n], png, domain))
            start += n

    def _domain(self, p: Prepared, features: np.ndarray | None) -> DomainScore | None:
        try:
            return p.model.domain_score(p.tiles.data, features)
        except Exception:  # the check is an addition: never lose the result over it
            log.exception(
                "%s: cannot score against the training domain", printable(p.candidate.path)
            )
            return None

    def _cam_png(self, p: Prepared, cams: np.ndarray) -> bytes | None:
        try:
            return cam_png(cam_mosaic(cams, p.tiles.origins, p.model.tile_size))
        except Exception:  # a map is a nicety: never lose the result over it
            log.exception("%s: cannot render the activation map", printable(p.candidate.path))
            return None

    # -- writer --------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            item = self.writes.get()
            if item is _STOP:
                return
            self._write_with_retry(item)

    def _write_with_retry(
        self, item: Scored | FinalFailure | Skipped | Moved | BadFrame | ModelSwitched
    ) -> None:
        if isinstance(item, ModelSwitched):
            self._write_switch_with_retry(item)
            return
        cand = item.prepared.candidate if isinstance(item, Scored) else item.candidate
        delay = 0.5
        while True:
            try:
                self._write(item)
                if self.writer_problem is not None:
                    log.warning("database: storing results again")
                self.writer_problem = None
                return
            except StemwatchError as exc:
                if self._abandon.is_set():
                    log.error(
                        "%s: result not stored (%s); it is redone at the next start",
                        printable(cand.path),
                        exc,
                    )
                    return
                self.writer_problem = f"cannot store results: {exc}"
                log.error(
                    "%s: cannot store the result (%s); retrying in %.1f s",
                    printable(cand.path),
                    exc,
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
            except Exception as exc:  # a bug: record the file as failed, once, then go on
                log.exception("%s: internal error while storing", printable(cand.path))
                reason = f"internal error while storing ({type(exc).__name__}: {exc})"
                self._write(FinalFailure(cand, reason, cand.attempts + 1))
                return

    def _write_switch_with_retry(self, item: ModelSwitched) -> None:
        delay = 0.5
        while True:
            try:
                self._record_switch(item)
                return
            except StemwatchError as exc:
                if self._abandon.is_set():
                    log.error("model switch to %s not stored (%s)", item.model.path, exc)
                    return
                self.writer_problem = f"cannot store results: {exc}"
                log.error(
                    "cannot store the model switch to %s (%s); retrying in %.1f s",
                    item.model.path,
                    exc,
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _record_switch(self, item: ModelSwitched) -> None:
        """Register the model and store the switch (the daemon's current model from now)."""
        m = item.model
        store.register_model(
            self.db,
            model_hash=m.model_hash,
            name=m.metadata.name,
            metadata_json=m.metadata.to_json(),
            provider=m.provider,
        )
        store.record_model_switch(
            self.db,
            model_hash=m.model_hash,
            previous_hash=None if item.previous is None else item.previous.model_hash,
            reason=item.reason,
            detail=item.detail,
        )

    def _write(self, item: Scored | FinalFailure | Skipped | Moved | BadFrame) -> None:
        if isinstance(item, FinalFailure):
            self._write_failure(item)
        elif isinstance(item, BadFrame):
            self._write_bad_frame(item)
        elif isinstance(item, Skipped):
            c = item.candidate
            store.record_skipped(
                self.db, c.version(), kind=item.kind, reason=item.reason, location=item.location
            )
            self.report(Outcome(c.path, "ignored", c.stat, c.attempts, item.reason))
        elif isinstance(item, Moved):
            self._write_move(item)
        else:
            self._write_result(item)

    def _write_failure(self, item: FinalFailure) -> None:
        c = item.candidate
        self._path_changed(path_text(str(c.path)))  # a done record it replaces
        retry_at = time.time() + item.retry_in_s if item.retry_in_s > 0 else None
        image_id = store.record_failure(
            self.db,
            c.version(item.content_hash),
            reason=item.reason,
            attempts=item.attempts,
            location=item.location,
            retry_at=retry_at,
        )
        self.report(
            Outcome(c.path, "failed", c.stat, item.attempts, item.reason, item.retry_in_s, image_id)
        )

    def _write_move(self, item: Moved) -> None:
        c = item.candidate
        old = item.moved
        store.record_move(self.db, old.image_id, c.version(item.content_hash), item.location)
        self._path_changed(old.path)
        self._path_changed(path_text(str(c.path)))
        log.info(
            "%s: moved or renamed from %s; its record (image %d) follows it, not analysed again",
            printable(c.path),
            printable(old.path),
            old.image_id,
        )
        self.report(Outcome(c.path, "moved", c.stat, c.attempts, image_id=old.image_id))
        wells = {(old.plate, old.well)}
        if item.location is not None:
            wells.add((item.location.plate, item.location.well))
        for plate, well in wells:
            if plate and well:
                self._update_well(plate, well, self.model.model_hash)

    def _write_result(self, item: Scored) -> None:
        prep = item.prepared
        model = prep.model
        c = prep.candidate
        version = c.version(prep.content_hash)
        existing = store.already_recorded(self.db, version)
        if existing is not None:
            log.debug("%s: same content already recorded (image %d)", printable(c.path), existing)
            store.refresh_version(self.db, existing, version)
            self.report(Outcome(c.path, "duplicate", c.stat, c.attempts, image_id=existing))
            return
        probability, tile_sd, n_tiles = score_image(item.probabilities)
        domain = item.domain
        image_id = store.record_result(
            self.db,
            version,
            prep.location,
            store.Prediction(
                model_hash=model.model_hash,
                probability=probability,
                tile_mean=probability,
                tile_sd=tile_sd,
                n_tiles=n_tiles,
                cam_png=item.cam_png,
                domain_score=None if domain is None else domain.score,
                out_of_domain=None if domain is None else domain.out_of_domain,
            ),
            unplaced_reason=prep.unplaced_reason,
        )
        loc = prep.location
        where = "" if loc is None else f" [{loc.plate} {loc.well}]"
        if domain is not None and domain.out_of_domain:
            log.warning(
                "%s: out of the model's training domain (domain score %.2f > 1); p(%s)=%.3f "
                "kept out of onset detection%s",
                printable(c.path),
                domain.score,
                model.metadata.positive_class,
                probability,
                where,
            )
        else:
            log.info(
                "%s: p(%s)=%.3f over %d tiles%s%s",
                printable(c.path),
                model.metadata.positive_class,
                probability,
                n_tiles,
                "" if domain is None else f", domain score {domain.score:.2f}",
                where,
            )
        self.report(Outcome(c.path, "done", c.stat, c.attempts, image_id=image_id))
        self._path_changed(path_text(str(c.path)))  # a record of the path it supersedes
        if loc is not None:
            self._update_well(loc.plate, loc.well, model.model_hash, image_id)
            if domain is not None and self.alerter is not None:
                self.alerter.domain(loc.plate, model.model_hash, model.metadata.name)

    def _write_bad_frame(self, item: BadFrame) -> None:
        c = item.candidate
        version = c.version(item.content_hash)
        existing = store.already_recorded(self.db, version)
        if existing is not None:
            store.refresh_version(self.db, existing, version)
            self.report(Outcome(c.path, "duplicate", c.stat, c.attempts, image_id=existing))
            return
        image_id = store.record_quality_issue(
            self.db,
            version,
            item.location,
            reason=item.reason,
            unplaced_reason=item.unplaced_reason,
        )
        self.report(Outcome(c.path, "done", c.stat, c.attempts, image_id=image_id))
        self._path_changed(path_text(str(c.path)))  # a record of the path it supersedes
        loc = item.location
        if loc is not None:  # a bad frame replacing an analysed version leaves the series
            self._update_well(loc.plate, loc.well, item.model.model_hash, image_id)

    def _wells(self, model_hash: str) -> WellSeries:
        """The writer's well updates of ``model_hash``'s series (one per model: after a swap
        the images in flight finish with the old model)."""
        wells = self._well_series.get(model_hash)
        if wells is None:
            wells = self._well_series[model_hash] = WellSeries(self.config.onset, model_hash)
        return wells

    def _path_changed(self, path: str) -> None:
        """The record of ``path`` changed (failed, moved, superseded): the well that held it
        is recomputed at its next update, in every model's series."""
        for wells in self._well_series.values():
            wells.path_changed(path)

    def _update_well(
        self, plate: str, well: str, model_hash: str, image_id: int | None = None
    ) -> None:
        """``model_hash``'s series and onset of the well after ``image_id`` joined it
        (incrementally), or after any other change (recomputed from its images)."""
        wells = self._wells(model_hash)
        try:
            if image_id is None:
                event = wells.recompute(self.db, plate, well)
            else:
                event = wells.image_scored(self.db, image_id)
            if event is not None and self.alerter is not None:
                self.alerter.onset(event)
        except StemwatchError as exc:
            wells.forget(plate, well)
            log.warning("%s %s: onset update failed (%s)", plate, well, exc)
        except Exception:
            wells.forget(plate, well)
            log.exception("%s %s: onset update failed", plate, well)


def _with_plane(loc: ImageLocation, plane: PlaneChoice) -> ImageLocation:
    from dataclasses import replace

    return replace(
        loc,
        channel=loc.channel if loc.channel is not None else plane.channel,
        channel_name=loc.channel_name if loc.channel_name is not None else plane.channel_name,
        z=loc.z if loc.z is not None else plane.z,
    )


def _put(q: queue.Queue[Any], item: object, deadline: float) -> None:
    """Put ``item``, waiting until ``deadline`` at most (a dead consumer must not hang us)."""
    try:
        q.put(item, timeout=max(0.1, deadline - time.monotonic()))
    except queue.Full:
        log.error("a pipeline queue stayed full until shutdown; its consumer may have died")


def _log_only(failure: Failure) -> None:
    """A standalone pipeline's supervisor: the failure is logged (critical) by the supervisor."""
