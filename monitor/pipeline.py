"""The processing stages behind the watcher: decode -> infer -> store, on bounded queues.

* ``decode_workers`` threads take stable candidates and give each file one ingest step: read
  its bytes once, hash them, check the structure of every page before decoding anything
  (:func:`stemwatch.core.imaging.check_file`), resolve its plate/well, decode the plane and cut
  it into tiles with :func:`stemwatch.core.imaging.prepare` (the trainer's own preprocessing,
  configured by the model's metadata);
* ``inference_workers`` threads batch the tiles of several images into one onnxruntime call
  and, when the model has a CAM output, render each image's activation map as a small PNG;
* one writer thread owns the database connection: it stores each result once (image record and
  prediction in one transaction), updates the well's onset state, records final failures and
  writes the heartbeat periodically;
* one alert thread (:class:`~monitor.alert_worker.AlertWorker`) records and delivers onset
  alerts and runs the instrument checks, so a slow chat service never holds up the writer. It
  has a database connection of its own, so it sees only what the writer committed.

Every queue is bounded, so a backlog of thousands of files costs a few images of memory. Each
finished candidate is counted once in :class:`~monitor.counts.Counts` and reported to the
daemon as an :class:`Outcome` through ``report``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from monitor import onset
from monitor.alert_worker import AlertWorker
from monitor.alerts import Alerter
from monitor.config import MonitorConfig
from monitor.counts import Counts
from monitor.inference import LoadedModel, cam_mosaic, cam_png
from monitor.stability import FileStat, backoff_delay, stat_file
from stemwatch import store
from stemwatch.core.aggregate import score_image
from stemwatch.core.errors import ImageReadError, PlateMetadataError, StemwatchError
from stemwatch.core.imaging import Tiles, check_file, decode, hash_bytes, prepare, read_bytes
from stemwatch.core.platemeta import IgnoredImageError, ImageLocation, resolve, with_config

log = logging.getLogger(__name__)

OutcomeKind = Literal["done", "duplicate", "retry", "failed", "gone", "changed", "ignored"]


@dataclass(frozen=True)
class Candidate:
    """A file the stability tracker found complete, handed to the pipeline."""

    path: Path
    stat: FileStat
    attempts: int = 0  # failed attempts so far


@dataclass(frozen=True)
class Outcome:
    """What became of one candidate (reported back to the daemon's loop)."""

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


@dataclass
class Scored:
    prepared: Prepared
    probabilities: np.ndarray  # positive-class probability of each tile
    cam_png: bytes | None = None


@dataclass
class FinalFailure:
    candidate: Candidate
    reason: str
    attempts: int
    content_hash: str | None = None
    location: ImageLocation | None = None


@dataclass(frozen=True)
class DaemonLoad:
    """What the heartbeat reports: a line for people, and the daemon's queue (images found
    and not yet analysed)."""

    detail: str
    queued: int


class PermanentImageError(ImageReadError):
    """The file is readable but can never be analysed (e.g. smaller than one tile)."""


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
        heartbeat: Callable[[], DaemonLoad] | None = None,
        counts: Counts | None = None,
    ) -> None:
        self.config = config
        self.model = model
        self.db = db
        self._report_to = report
        self.counts = counts if counts is not None else Counts()
        self.alerter = AlertWorker(alerter) if alerter is not None else None
        self.load = heartbeat
        inf = config.inference
        self.work: queue.Queue[Any] = queue.Queue(maxsize=max(2, 2 * inf.decode_workers))
        self.ready: queue.Queue[Any] = queue.Queue(maxsize=inf.queue_images)
        self.writes: queue.Queue[Any] = queue.Queue(maxsize=2 * inf.queue_images)
        self._decoders = [
            threading.Thread(target=self._decode_loop, name=f"stemwatch-decode-{i}", daemon=True)
            for i in range(inf.decode_workers)
        ]
        self._inferers = [
            threading.Thread(target=self._infer_loop, name=f"stemwatch-infer-{i}", daemon=True)
            for i in range(inf.inference_workers)
        ]
        self._writer = threading.Thread(
            target=self._write_loop, name="stemwatch-writer", daemon=True
        )
        self._abandon = threading.Event()
        self._started = False

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

    def close(self, timeout_s: float = 30.0) -> None:
        """Finish what is queued, flush the writer, join every thread."""
        if not self._started:
            return
        deadline = time.monotonic() + timeout_s
        for _ in self._decoders:
            self.work.put(_STOP)
        for t in self._decoders:
            t.join(max(0.1, deadline - time.monotonic()))
        for _ in self._inferers:
            self.ready.put(_STOP)
        for t in self._inferers:
            t.join(max(0.1, deadline - time.monotonic()))
        self.writes.put(_STOP)
        self._writer.join(max(0.1, deadline - time.monotonic()))
        if self._writer.is_alive():
            log.error(
                "writer did not finish within %.0f s; abandoning unwritten results", timeout_s
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
            except Exception:  # a bug must not kill the worker; the file is retried
                log.exception("%s: unexpected error while preparing", item.path)
                self._retry_or_fail(item, "internal error while preparing (see log)", None)

    def _decode_one(self, cand: Candidate) -> None:
        path = cand.path
        stat = stat_file(path)
        if stat is None:
            log.warning("%s: gone before it was read (deleted or moved away)", path)
            self.report(Outcome(path, "gone", attempts=cand.attempts))
            return
        if stat != cand.stat:
            self.report(Outcome(path, "changed", stat, cand.attempts))
            return
        digest: str | None = None
        location: ImageLocation | None = None
        try:
            self._check_size(cand)
            data = read_bytes(path)  # the only read: everything below uses these bytes
            after = stat_file(path)
            if after != cand.stat:  # rewritten while we read it: read it again later
                self.report(Outcome(path, "changed", after, cand.attempts))
                return
            digest = hash_bytes(data)
            checked = check_file(path, data)  # structure of every page, before any decoding
            location = self._locate(path, checked.ome_xml)
            tiles = self._tiles(path, decode(checked).pixels)
        except _IgnoredError as exc:
            log.info("%s: ignored (%s)", path, exc)
            self.report(Outcome(path, "ignored", stat, cand.attempts, reason=str(exc)))
            return
        except PermanentImageError as exc:
            self._fail(cand, exc.reason, cand.attempts + 1, digest, location)
            return
        except ImageReadError as exc:
            if not path.exists():
                log.warning("%s: gone before it was read (deleted or moved away)", path)
                self.report(Outcome(path, "gone", attempts=cand.attempts))
                return
            self._retry_or_fail(cand, exc.reason, digest, location)
            return
        self.ready.put(Prepared(cand, digest, location, tiles))

    def _check_size(self, cand: Candidate) -> None:
        limit_mb = self.config.watch.max_file_mb
        if cand.stat.size > limit_mb * 1e6:
            raise PermanentImageError(
                cand.path,
                f"file is {cand.stat.size / 1e6:.0f} MB, above watch.max_file_mb ({limit_mb:g} "
                "MB; each decode worker holds one whole file in memory): raise the limit if "
                "images this large are expected",
            )

    def _locate(self, path: Path, ome_xml: str | None) -> ImageLocation | None:
        plate = self.config.plate
        try:
            return resolve(path, ome_xml=ome_xml, **with_config(plate))
        except IgnoredImageError as exc:
            raise _IgnoredError(str(exc)) from None
        except PlateMetadataError as exc:
            log.warning("%s: stored without plate/well (%s)", path, exc)
            return None

    def _tiles(self, path: Path, pixels: np.ndarray) -> Tiles:
        tiling = self.model.metadata.tiling
        need = self.config.plate.min_image_size or tiling.tile_size * tiling.downsample
        if min(pixels.shape[:2]) < need:
            raise PermanentImageError(
                path,
                f"image is {pixels.shape[1]}x{pixels.shape[0]} px, smaller than {need} px "
                f"(one {tiling.tile_size}-px tile after downsampling x{tiling.downsample}); "
                "is this a thumbnail or the wrong channel?",
            )
        return prepare(pixels, self.model.metadata.normalisation, tiling)

    def _retry_or_fail(
        self,
        cand: Candidate,
        reason: str,
        digest: str | None,
        location: ImageLocation | None = None,
    ) -> None:
        attempts = cand.attempts + 1
        retry = self.config.retry
        if attempts >= retry.max_attempts:
            self._fail(cand, reason, attempts, digest, location)
            return
        delay = backoff_delay(attempts, retry.initial_backoff_s, retry.max_backoff_s)
        log.info(
            "%s: not readable yet (%s); attempt %d of %d, retry in %.1f s",
            cand.path,
            reason,
            attempts,
            retry.max_attempts,
            delay,
        )
        self.report(
            Outcome(cand.path, "retry", cand.stat, attempts, reason=reason, retry_in_s=delay)
        )

    def _fail(
        self,
        cand: Candidate,
        reason: str,
        attempts: int,
        digest: str | None,
        location: ImageLocation | None = None,
    ) -> None:
        log.warning("%s: failed after %d attempt(s): %s", cand.path, attempts, reason)
        self.writes.put(FinalFailure(cand, reason, attempts, digest, location))

    # -- inference -----------------------------------------------------------------------

    def _infer_loop(self) -> None:
        inf = self.config.inference
        stop = False
        while not stop:
            first = self.ready.get()
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
                items.append(item)
                n += len(item.tiles.data)
            self._infer_batch(items)

    def _infer_batch(self, items: list[Prepared]) -> None:
        batch = np.concatenate([p.tiles.data for p in items], axis=0)
        t0 = time.perf_counter()
        try:
            step = self.config.inference.batch_tiles
            parts = [
                self.model.predict_with_cam(batch[i : i + step]) for i in range(0, len(batch), step)
            ]
            probs = np.concatenate([p for p, _ in parts])
            chunks = [c for _, c in parts if c is not None]
            cams = np.concatenate(chunks) if len(chunks) == len(parts) else None
        except Exception as exc:  # onnxruntime errors: record, keep running
            log.exception("inference failed on a batch of %d image(s)", len(items))
            for p in items:
                reason = f"inference failed: {exc}"
                self._fail(p.candidate, reason, p.candidate.attempts + 1, None, p.location)
            return
        self.counts.add(infer_s=time.perf_counter() - t0, tiles=len(batch), batches=1)
        start = 0
        for p in items:
            n = len(p.tiles.data)
            png = None
            if cams is not None:
                png = self._cam_png(p, cams[start : start + n])
            self.writes.put(Scored(p, probs[start : start + n], png))
            start += n

    def _cam_png(self, p: Prepared, cams: np.ndarray) -> bytes | None:
        try:
            return cam_png(cam_mosaic(cams, p.tiles.origins, self.model.tile_size))
        except Exception:  # a map is a nicety: never lose the result over it
            log.exception("%s: cannot render the activation map", p.candidate.path)
            return None

    # -- writer --------------------------------------------------------------------------

    def _write_loop(self) -> None:
        cfg = self.config
        next_beat = 0.0
        next_checks = time.monotonic() + cfg.instrument_check_interval_s
        while True:
            now = time.monotonic()
            if now >= next_beat:
                self._periodic(self._beat)
                next_beat = now + cfg.heartbeat_interval_s
            if now >= next_checks and self.alerter is not None:
                self._periodic(self._instrument_checks)
                next_checks = now + cfg.instrument_check_interval_s
            try:
                item = self.writes.get(timeout=max(0.05, min(next_beat, next_checks) - now))
            except queue.Empty:
                continue
            if item is _STOP:
                return
            self._write_with_retry(item)

    def _periodic(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except StemwatchError as exc:
            log.warning("database: periodic write failed (%s); will try again", exc)
        except Exception:
            log.exception("periodic task failed; will try again")

    def _instrument_checks(self) -> None:
        if self.alerter is not None:
            self.alerter.instrument_checks()

    def _beat(self) -> None:
        load = self.load() if self.load else None
        store.beat(
            self.db,
            state="running",
            detail=load.detail if load else "",
            queued=load.queued if load else None,
            interval_s=self.config.heartbeat_interval_s,
        )

    def _write_with_retry(self, item: Scored | FinalFailure) -> None:
        delay = 0.5
        while True:
            try:
                self._write(item)
                return
            except StemwatchError as exc:
                path = (
                    item.prepared.candidate.path
                    if isinstance(item, Scored)
                    else item.candidate.path
                )
                if self._abandon.is_set():
                    log.error(
                        "%s: result not stored (%s); it is redone at the next start", path, exc
                    )
                    return
                log.error("%s: cannot store the result (%s); retrying in %.1f s", path, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _write(self, item: Scored | FinalFailure) -> None:
        if isinstance(item, FinalFailure):
            c = item.candidate
            version = store.FileVersion(
                str(c.path), c.stat.size, c.stat.mtime_ns, item.content_hash
            )
            image_id = store.record_failure(
                self.db,
                version,
                reason=item.reason,
                attempts=item.attempts,
                location=item.location,
            )
            self.report(
                Outcome(c.path, "failed", c.stat, item.attempts, item.reason, 0.0, image_id)
            )
            return
        prep = item.prepared
        c = prep.candidate
        version = store.FileVersion(str(c.path), c.stat.size, c.stat.mtime_ns, prep.content_hash)
        existing = store.already_recorded(self.db, version)
        if existing is not None:
            log.debug("%s: same content already recorded (image %d)", c.path, existing)
            self.report(Outcome(c.path, "duplicate", c.stat, c.attempts, image_id=existing))
            return
        probability, tile_sd, n_tiles = score_image(item.probabilities)
        image_id = store.record_result(
            self.db,
            version,
            prep.location,
            store.Prediction(
                model_hash=self.model.model_hash,
                probability=probability,
                tile_mean=probability,
                tile_sd=tile_sd,
                n_tiles=n_tiles,
                cam_png=item.cam_png,
            ),
        )
        log.info(
            "%s: p(%s)=%.3f over %d tiles%s",
            c.path,
            self.model.metadata.positive_class,
            probability,
            n_tiles,
            "" if prep.location is None else f" [{prep.location.plate} {prep.location.well}]",
        )
        self.report(Outcome(c.path, "done", c.stat, c.attempts, image_id=image_id))
        if prep.location is not None:
            self._update_well(prep.location)

    def _update_well(self, loc: ImageLocation) -> None:
        try:
            event = onset.update_well(
                self.db, loc.plate, loc.well, self.config.onset, model_hash=self.model.model_hash
            )
            if event is not None and self.alerter is not None:
                self.alerter.onset(event)
        except StemwatchError as exc:
            log.warning("%s %s: onset update failed (%s)", loc.plate, loc.well, exc)
        except Exception:
            log.exception("%s %s: onset update failed", loc.plate, loc.well)


class _IgnoredError(Exception):
    """An instrument by-product the plate resolver recognised (e.g. a thumbnail)."""
