"""Re-analysis: re-score stored images from their files with another model.

Three separable parts, so that an engine other than the local one (a Dask cluster) can run
the middle one on its workers while one writer records:

1. **plan** (:func:`plan`): the images the model has not scored yet, from the store. An
   interrupted run resumes here: what was recorded is never scored again.
2. **score** (workers, no database): :func:`score_tasks` takes plain
   :class:`~stemwatch.store.ImageToScore` records and a loaded model and returns one
   :class:`Rescored` or :class:`Unscorable` per task. Each file is read once, checked against
   the size and content hash the daemon recorded (a file changed since is not scored), decoded
   and tiled by the model's own recipe (:func:`stemwatch.core.imaging.prepare`, as the daemon
   does), and the tiles of several images go through the model in one batch.
   :func:`score_chunk` is the same from a model *path* (loaded once per process and checked
   against its hash): what a remote worker calls.
3. **record** (one writer, :class:`Recorder`): stores each batch of predictions in one
   transaction, recomputes a well's series and onset for this model once its last planned
   image is in, and at the end every well of the scope this model scored (so a run that was
   interrupted before a well's series was written catches up). It never raises alerts: a
   re-analysis looks at the past.

:func:`reanalyse` plans, hands the plan to an **engine** that scores it and feeds the recorder,
then finishes. :class:`LocalEngine` (:func:`run_local`) scores in this process: decode threads
feed batched inference in the calling thread. :class:`monitor.cluster.DaskEngine` scores on a
Dask cluster's workers (local worker processes, or a cluster at a scheduler address) while
this process records. The daemon's own model stays the default view: a re-analysis records
its run and its model (``store.start_reanalysis``) apart from the daemons' models, and never
switches a daemon to it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from monitor.inference import LoadedModel, load_model
from monitor.onset import OnsetConfig, update_well
from stemwatch import store
from stemwatch.core.aggregate import score_image
from stemwatch.core.errors import ConfigError, ImageReadError, StemwatchError
from stemwatch.core.imaging import (
    ImageFile,
    Tiles,
    check_file,
    choose_plane,
    decode,
    hash_bytes,
    prepare,
    read_bytes,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Rescored:
    """A model's score of one recorded image."""

    image_id: int
    plate: str | None
    well: str | None
    probability: float
    tile_sd: float | None
    n_tiles: int
    instrument: str = ""
    domain_score: float | None = None  # None: the model carries no domain description
    out_of_domain: bool | None = None


@dataclass(frozen=True)
class Unscorable:
    """A recorded image that could not be scored now (missing, changed, unreadable)."""

    image_id: int
    plate: str | None
    well: str | None
    path: str
    reason: str
    instrument: str = ""

    @classmethod
    def of(cls, task: store.ImageToScore, reason: str) -> Unscorable:
        return cls(task.image_id, task.plate, task.well, task.path, reason, task.instrument)


Result = Rescored | Unscorable


@dataclass(frozen=True)
class _Prepared:
    task: store.ImageToScore
    tiles: Tiles


# --------------------------------------------------------------------------------------------
# 1. plan
# --------------------------------------------------------------------------------------------


def map_path(path: str, path_map: Sequence[tuple[str, str]]) -> str:
    """``path`` with the first matching folder prefix ``(daemon's, this machine's)`` replaced:
    the daemon recorded ``/data/incoming/...``, the archive is ``/archive/incoming/...`` here."""
    for old, new in path_map:
        prefix = old.rstrip("/")
        if path == prefix or path.startswith(prefix + "/"):
            return new.rstrip("/") + path[len(prefix) :]
    return path


def parse_path_map(items: Sequence[str]) -> list[tuple[str, str]]:
    """``FROM=TO`` pairs of the command line; an item without both sides is refused."""
    out: list[tuple[str, str]] = []
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ConfigError(
                f"--path-map {item!r}: expected FROM=TO (the folder the daemon recorded, then "
                "where it is seen here), e.g. --path-map /data/incoming=/archive/incoming"
            )
        out.append((old.strip(), new.strip()))
    return out


def plan(
    db: store.Database,
    model_hash: str,
    plates: Sequence[str] | None = None,
    *,
    instrument: str | None = None,
) -> list[store.ImageToScore]:
    """The current analysed images ``model_hash`` has not scored (of ``plates``, else every
    plate; of ``instrument``, else every instrument)."""
    return store.images_to_rescore(db, model_hash, plates=plates, instrument=instrument)


# --------------------------------------------------------------------------------------------
# 2. score (workers: no database)
# --------------------------------------------------------------------------------------------


def prepare_task(task: store.ImageToScore, model: LoadedModel) -> _Prepared | Unscorable:
    """Read, verify, decode and tile one image the way the daemon did."""
    path = Path(task.path)
    try:
        data = read_bytes(path)
    except ImageReadError as exc:
        reason = "missing" if not path.exists() else f"unreadable: {exc.reason}"
        return Unscorable.of(task, reason)
    if task.size is not None and len(data) != task.size:
        return Unscorable.of(
            task, f"changed since it was analysed (size {task.size} -> {len(data)} bytes)"
        )
    if task.content_hash is not None and hash_bytes(data) != task.content_hash:
        return Unscorable.of(task, "changed since it was analysed (content hash differs)")
    try:
        checked = check_file(path, data)
        pixels = decode(checked, page=recorded_page(task, checked)).pixels
    except ImageReadError as exc:
        return Unscorable.of(task, f"unreadable: {exc.reason}")
    tiling = model.metadata.tiling
    need = tiling.tile_size * tiling.downsample
    if min(pixels.shape[:2]) < need:
        return Unscorable.of(
            task,
            f"image is {pixels.shape[1]}x{pixels.shape[0]} px, smaller than one tile of this "
            f"model ({need} px)",
        )
    return _Prepared(task, prepare(pixels, model.metadata.normalisation, tiling))


def recorded_page(task: store.ImageToScore, checked: ImageFile) -> int:
    """The page of a file of several planes that the daemon analysed: its recorded channel
    and focal plane (the daemon chose the plane by its settings; the record says which)."""
    if checked.n_pages <= 1:
        return 0
    channels = [str(task.channel)] if task.channel is not None else None
    for z_plane in ("first", "middle", "last"):
        choice = choose_plane(
            checked.ome_xml,
            filename=Path(task.path).name,
            n_pages=checked.n_pages,
            channels=channels,
            z_plane=z_plane,
        )
        if task.z is None or choice.z == task.z:
            return choice.page
    raise ImageReadError(
        task.path, f"no focal plane {task.z} in the file (the daemon analysed that one)"
    )


def score_prepared(items: Sequence[_Prepared], model: LoadedModel) -> list[Result]:
    """One batched inference over the tiles of ``items``; one result per item."""
    tiled = [p for p in items if len(p.tiles.data)]
    out: list[Result] = [
        Unscorable.of(p.task, "no foreground tile (empty field?)")
        for p in items
        if not len(p.tiles.data)
    ]
    if not tiled:
        return out
    outputs = model.infer(np.concatenate([p.tiles.data for p in tiled], axis=0), cam=False)
    probs, feats = outputs.probabilities, outputs.features
    start = 0
    for p in tiled:
        n = len(p.tiles.data)
        probability, tile_sd, n_tiles = score_image(probs[start : start + n])
        # the domain check, as the daemon applies it (None: the model has no description)
        mine = None if feats is None else feats[start : start + n]
        domain = model.domain_score(p.tiles.data, mine)
        start += n
        t = p.task
        out.append(
            Rescored(
                t.image_id,
                t.plate,
                t.well,
                probability,
                tile_sd,
                n_tiles,
                t.instrument,
                domain_score=None if domain is None else domain.score,
                out_of_domain=None if domain is None else domain.out_of_domain,
            )
        )
    return out


def _batches(
    prepared: Iterable[_Prepared | Unscorable], batch_tiles: int
) -> Iterator[tuple[list[_Prepared], list[Unscorable]]]:
    """Group prepared images into batches of about ``batch_tiles`` tiles."""
    batch: list[_Prepared] = []
    failed: list[Unscorable] = []
    n = 0
    for item in prepared:
        if isinstance(item, Unscorable):
            failed.append(item)
            continue
        batch.append(item)
        n += len(item.tiles.data)
        if n >= batch_tiles:
            yield batch, failed
            batch, failed, n = [], [], 0
    if batch or failed:
        yield batch, failed


def score_tasks(
    tasks: Sequence[store.ImageToScore], model: LoadedModel, *, batch_tiles: int = 64
) -> list[Result]:
    """Score ``tasks`` with ``model`` in this thread (a worker's whole job); one result each."""
    out: list[Result] = []
    for batch, failed in _batches((prepare_task(t, model) for t in tasks), batch_tiles):
        out.extend(failed)
        out.extend(score_prepared(batch, model))
    return out


_MODELS: dict[tuple[str, str], LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def score_chunk(
    tasks: Sequence[store.ImageToScore],
    model_path: str,
    *,
    model_hash: str,
    device: str = "auto",
    intra_op_threads: int = 1,
    batch_tiles: int = 64,
) -> list[Result]:
    """:func:`score_tasks` from a model file: loaded once per process, and refused when its
    hash is not ``model_hash`` (a worker must score with the model the writer records)."""
    key = (model_path, model_hash)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = load_model(Path(model_path), device=device, intra_op_threads=intra_op_threads)
            if model.model_hash != model_hash:
                raise StemwatchError(
                    f"{model_path}: this worker sees a model with hash {model.model_hash[:12]}, "
                    f"the run records {model_hash[:12]}; give every worker the same file"
                )
            _MODELS[key] = model
    return score_tasks(tasks, model, batch_tiles=batch_tiles)


# --------------------------------------------------------------------------------------------
# 3. record (one writer)
# --------------------------------------------------------------------------------------------


@dataclass
class ReanalysisSummary:
    """What a re-analysis did."""

    model_hash: str
    planned: int = 0
    scored: int = 0
    unscorable: list[Unscorable] = field(default_factory=list)
    wells_updated: int = 0
    onsets: int = 0
    interrupted: bool = False
    seconds: float = 0.0
    engine: str = ""  # where it was scored

    @property
    def remaining(self) -> int:
        return self.planned - self.scored - len(self.unscorable)


class Recorder:
    """The one writer of a re-analysis: predictions in batches, then series and onsets."""

    def __init__(
        self,
        db: store.Database,
        model_hash: str,
        onset: OnsetConfig,
        tasks: Sequence[store.ImageToScore],
    ) -> None:
        self.db = db
        self.model_hash = model_hash
        self.onset = onset
        self.summary = ReanalysisSummary(model_hash, planned=len(tasks))
        self._pending = Counter(
            (t.instrument, t.plate, t.well) for t in tasks if t.plate and t.well
        )
        self._updated: set[tuple[str, str, str]] = set()

    def record(self, results: Sequence[Result]) -> None:
        """Store a batch of results (one transaction); wells whose planned images are all in
        get their series and onset for this model."""
        scored = [r for r in results if isinstance(r, Rescored)]
        store.record_predictions(
            self.db,
            [
                (
                    r.image_id,
                    store.Prediction(
                        model_hash=self.model_hash,
                        probability=r.probability,
                        tile_mean=r.probability,
                        tile_sd=r.tile_sd,
                        n_tiles=r.n_tiles,
                        domain_score=r.domain_score,
                        out_of_domain=r.out_of_domain,
                    ),
                )
                for r in scored
            ],
        )
        self.summary.scored += len(scored)
        complete: set[tuple[str, str, str]] = set()
        for r in results:
            if isinstance(r, Unscorable):
                log.warning("image %d %s: not re-scored (%s)", r.image_id, r.path, r.reason)
                self.summary.unscorable.append(r)
            if r.plate and r.well:
                key = (r.instrument, r.plate, r.well)
                self._pending[key] -= 1
                if self._pending[key] <= 0:
                    complete.add(key)
        for instrument, plate, well in sorted(complete):
            self.update(instrument, plate, well)

    def update(self, instrument: str, plate: str, well: str) -> None:
        """This model's series and onset of one well, from its predictions (no alert)."""
        event = update_well(
            self.db, plate, well, self.onset, model_hash=self.model_hash, instrument=instrument
        )
        self._updated.add((instrument, plate, well))
        self.summary.wells_updated = len(self._updated)
        if event is not None:
            self.summary.onsets += 1

    def finish(
        self, plates: Sequence[str] | None = None, *, instrument: str | None = None
    ) -> ReanalysisSummary:
        """Series and onsets of every well of the scope this model scored and this run did
        not update yet (wells of earlier, interrupted runs catch up here)."""
        for key in store.scored_wells(
            self.db, self.model_hash, plates=plates, instrument=instrument
        ):
            if key not in self._updated:
                self.update(*key)
        return self.summary


# --------------------------------------------------------------------------------------------
# The local engine
# --------------------------------------------------------------------------------------------


def _ahead(
    pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], depth: int
) -> Iterator[R]:
    """``map(fn, items)`` on ``pool`` in order, with at most ``depth`` items in flight."""
    queue: deque[Future[R]] = deque()
    for item in items:
        queue.append(pool.submit(fn, item))
        if len(queue) >= depth:
            yield queue.popleft().result()
    while queue:
        yield queue.popleft().result()


class Engine(Protocol):
    """What scores a plan: every task's result goes to ``recorder`` (in any order, in
    batches); ``progress`` gets the number of results recorded; ``stop`` ends the run after
    what is in flight."""

    def __call__(
        self,
        model: LoadedModel,
        tasks: Sequence[store.ImageToScore],
        recorder: Recorder,
        *,
        batch_tiles: int,
        progress: Callable[[int], None] | None,
        stop: threading.Event | None,
    ) -> None: ...

    def for_plan(self, n_images: int) -> Engine:
        """The engine that scores a plan of ``n_images`` (itself, or one it chooses)."""
        ...

    def describe(self) -> str: ...


@dataclass
class LocalEngine:
    """Scores in this process: ``decode_workers`` threads decode, this thread infers."""

    decode_workers: int = 2
    commit_images: int = 64

    def __call__(
        self,
        model: LoadedModel,
        tasks: Sequence[store.ImageToScore],
        recorder: Recorder,
        *,
        batch_tiles: int = 64,
        progress: Callable[[int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        run_local(
            model,
            tasks,
            recorder,
            decode_workers=self.decode_workers,
            batch_tiles=batch_tiles,
            commit_images=self.commit_images,
            progress=progress,
            stop=stop,
        )

    def for_plan(self, n_images: int) -> LocalEngine:
        return self

    def describe(self) -> str:
        return f"this process ({self.decode_workers} decode thread(s))"


def run_local(
    model: LoadedModel,
    tasks: Sequence[store.ImageToScore],
    recorder: Recorder,
    *,
    decode_workers: int = 2,
    batch_tiles: int = 64,
    commit_images: int = 64,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Decode threads read and tile, this thread runs batched inference, ``recorder`` writes
    every ``commit_images`` results. ``stop`` ends the run after the batch in flight."""
    pending: list[Result] = []

    def flush() -> None:
        if pending:
            recorder.record(list(pending))
            if progress is not None:
                progress(len(pending))
            pending.clear()

    with ThreadPoolExecutor(decode_workers, thread_name_prefix="stemwatch-rescore") as pool:
        items = (t for t in tasks if stop is None or not stop.is_set())
        prepared = _ahead(pool, lambda t: prepare_task(t, model), items, 2 * decode_workers + 2)
        for batch, failed in _batches(prepared, batch_tiles):
            pending.extend(failed)
            pending.extend(score_prepared(batch, model))
            if len(pending) >= commit_images:
                flush()
        flush()


def reanalyse(
    db: store.Database,
    model: LoadedModel,
    *,
    plates: Sequence[str] | None = None,
    instrument: str | None = None,
    onset: OnsetConfig | None = None,
    by: str = "stemwatch reanalyse",
    engine: Engine | None = None,
    decode_workers: int = 2,
    commit_images: int = 64,
    batch_tiles: int = 64,
    path_map: Sequence[tuple[str, str]] = (),
    on_plan: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> ReanalysisSummary:
    """Re-score with ``model`` every current image of ``plates`` (else every plate) of
    ``instrument`` (else every instrument) it has not scored; record its predictions, series
    and onsets beside every other model's. ``engine`` scores (default: this process, with
    ``decode_workers`` threads, recording every ``commit_images``); ``path_map`` rewrites the
    recorded files' folder prefixes."""
    t0 = time.perf_counter()
    run_id = store.start_reanalysis(
        db,
        model_hash=model.model_hash,
        name=model.metadata.name,
        metadata_json=model.metadata.to_json(),
        by=by,
        plates=plates,
        instrument=instrument,
    )
    tasks = plan(db, model.model_hash, plates, instrument=instrument)
    if path_map:
        tasks = [replace(t, path=map_path(t.path, path_map)) for t in tasks]
    engine = (engine or LocalEngine(decode_workers, commit_images)).for_plan(len(tasks))
    if on_plan is not None:
        on_plan(len(tasks))
    log.info(
        "re-analysis with %s (%s): %d image(s) to score%s, in %s",
        model.metadata.name,
        model.model_hash[:12],
        len(tasks),
        "" if plates is None else f" on plate(s) {', '.join(plates)}",
        engine.describe(),
    )
    recorder = Recorder(db, model.model_hash, onset or OnsetConfig(), tasks)
    try:
        if tasks:
            engine(model, tasks, recorder, batch_tiles=batch_tiles, progress=progress, stop=stop)
    except BaseException:  # the run's record says how far it got; what is recorded stays
        done = recorder.summary
        with contextlib.suppress(StemwatchError):
            store.finish_reanalysis(
                db,
                run_id,
                planned=done.planned,
                scored=done.scored,
                unscorable=len(done.unscorable),
                interrupted=True,
            )
        raise
    summary = recorder.finish(plates, instrument=instrument)
    summary.engine = engine.describe()
    summary.interrupted = bool(stop is not None and stop.is_set() and summary.remaining > 0)
    summary.seconds = time.perf_counter() - t0
    store.finish_reanalysis(
        db,
        run_id,
        planned=summary.planned,
        scored=summary.scored,
        unscorable=len(summary.unscorable),
        interrupted=summary.interrupted,
    )
    return summary
