"""Re-analysis at archive scale: the scoring of :mod:`monitor.reanalyse` on a Dask cluster.

The three parts of a re-analysis stay where they were: this process **plans** (the images the
model has not scored, from the store) and **records** (the one writer,
:class:`~monitor.reanalyse.Recorder`: the store is written by this process only); the Dask
workers **score**: each task is :func:`~monitor.reanalyse.score_chunk` on a chunk of plain
:class:`~stemwatch.store.ImageToScore` records, which reads the files by their recorded paths,
checks them against the recorded size and content hash, decodes the plane the daemon
analysed, tiles and scores them with the model loaded once per worker process (and refused if
its hash is not the run's). No worker touches the database.

At most ``in_flight`` chunks are submitted at a time (twice the cluster's threads by default),
so a plan of a million images costs a few chunks of memory, and results are recorded as they
arrive, in any order. ``stop`` (Ctrl-C) submits nothing more and records the chunks in flight;
what was recorded is never scored again (the plan is the predictions table), so running the
same command again resumes.

The cluster: a scheduler address (``tcp://host:8786``: a cluster started by
``dask-scheduler``/``dask-worker``, or by ``dask-jobqueue`` on Slurm, see docs/facility.md), or
a :class:`distributed.LocalCluster` of worker *processes* on this machine (one thread each:
decoding and onnxruntime then use one core per worker, with no GIL between them). Workers must
see the images and the model file at the paths this process gives them
(``stemwatch reanalyse --path-map`` rewrites the daemon's folder to the cluster's mount).

Dask is optional (the ``cluster`` extra): without it, ``stemwatch reanalyse`` runs in this
process (:func:`~monitor.reanalyse.run_local`).
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.inference import LoadedModel
from monitor.reanalyse import Engine, LocalEngine, Recorder, Result, score_chunk
from stemwatch import store
from stemwatch.core.errors import ConfigError

log = logging.getLogger(__name__)

# The default engine (docs/facility.md, measured): a local cluster only on 4 or more cores and
# for 500 images or more. Below 500, starting workers costs seconds the plan does not repay;
# on 2 cores this process did 62 images/s per busy core against a worker's 34, and its threads
# use about 2 cores (one inference thread), so worker processes win only with more cores.
AUTO_CLUSTER_MIN_IMAGES = 500
AUTO_CLUSTER_MIN_CORES = 4
INSTALL_HINT = "install the cluster extra: pip install 'stemwatch[cluster]' (dask[distributed])"


def dask_available() -> bool:
    """Whether ``distributed`` can be imported here."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class ClusterSpec:
    """Where to score: ``scheduler`` (an address), else a local cluster of ``workers``
    processes."""

    scheduler: str | None = None
    workers: int = 2
    chunk_images: int = 16  # images per task: large enough to batch tiles, small to balance
    in_flight: int | None = None  # chunks submitted at once (default: 2 x the cluster's threads)
    device: str = "auto"
    intra_op_threads: int = 1


@contextmanager
def connect(spec: ClusterSpec) -> Iterator[Any]:
    """A ``distributed.Client`` on the scheduler of ``spec``, or on a local cluster of worker
    processes started (and stopped) here."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ConfigError(f"re-analysis on a Dask cluster needs Dask: {INSTALL_HINT}") from exc
    if spec.scheduler is not None:
        try:
            client = Client(spec.scheduler, timeout="30s")
        except OSError as exc:
            raise ConfigError(
                f"--scheduler {spec.scheduler}: cannot reach the Dask scheduler ({exc}); is it "
                "running, and is the address (tcp://host:8786) right?"
            ) from exc
        with client:
            yield client
        return
    if spec.workers < 1:
        raise ConfigError(f"a local Dask cluster needs at least 1 worker, got {spec.workers}")
    with _sigint_ignored():  # Ctrl-C reaches the whole process group: not the workers
        cluster = LocalCluster(
            n_workers=spec.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # no fixed port, localhost only
            silence_logs=logging.WARNING,
        )
    with cluster, Client(cluster) as client:
        yield client


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Worker processes started in here inherit an ignored SIGINT (an ignored signal stays
    ignored across exec, and Python then installs no KeyboardInterrupt handler): a Ctrl-C in
    the terminal stops the run through this process (the chunks in flight finish), instead of
    killing the workers under it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def cluster_threads(client: Any) -> int:
    """How many tasks the cluster runs at once (the sum of its workers' threads)."""
    info = client.scheduler_info()
    return max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))


def run_dask(
    client: Any,
    model: LoadedModel,
    tasks: Sequence[store.ImageToScore],
    recorder: Recorder,
    *,
    chunk_images: int = 16,
    in_flight: int | None = None,
    batch_tiles: int = 64,
    device: str = "auto",
    intra_op_threads: int = 1,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Score ``tasks`` on the cluster of ``client`` in chunks; ``recorder`` (this process)
    records each chunk's results as it arrives. ``stop`` ends the run once the chunks in
    flight are recorded. A worker's error that is not about one image (another model at the
    path, a bug) stops the run: what was recorded stays."""
    from distributed import as_completed

    chunks = [tasks[i : i + chunk_images] for i in range(0, len(tasks), chunk_images)]
    if not chunks:
        return
    depth = in_flight or 2 * cluster_threads(client)
    run = uuid.uuid4().hex[:8]  # keys of this run only: a cluster may still know an earlier one's
    model_path = str(Path(model.path).resolve())
    log.info(
        "scoring %d image(s) in %d chunk(s) on %d Dask thread(s), %d chunk(s) in flight",
        len(tasks),
        len(chunks),
        cluster_threads(client),
        depth,
    )

    def submit(i: int) -> Any:
        return client.submit(
            score_chunk,
            chunks[i],
            model_path,
            model_hash=model.model_hash,
            device=device,
            intra_op_threads=intra_op_threads,
            batch_tiles=batch_tiles,
            key=f"stemwatch-rescore-{model.model_hash[:12]}-{run}-{i}",
            pure=False,
        )

    next_chunk = min(depth, len(chunks))
    in_flight_now = {submit(i) for i in range(next_chunk)}
    running = as_completed(in_flight_now)
    try:
        for future in running:
            results: list[Result] = future.result()  # a worker's exception is raised here
            in_flight_now.discard(future)
            future.release()  # recorded: the cluster may forget it (memory stays flat)
            recorder.record(results)
            if progress is not None:
                progress(len(results))
            if next_chunk < len(chunks) and not (stop is not None and stop.is_set()):
                nxt = submit(next_chunk)
                in_flight_now.add(nxt)
                running.add(nxt)
                next_chunk += 1
    except BaseException:
        client.cancel(list(in_flight_now))
        raise


@dataclass
class DaskEngine:
    """A re-analysis engine (see :func:`monitor.reanalyse.reanalyse`) on a Dask cluster."""

    spec: ClusterSpec

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
        with connect(self.spec) as client:
            run_dask(
                client,
                model,
                tasks,
                recorder,
                chunk_images=self.spec.chunk_images,
                in_flight=self.spec.in_flight,
                batch_tiles=batch_tiles,
                device=self.spec.device,
                intra_op_threads=self.spec.intra_op_threads,
                progress=progress,
                stop=stop,
            )

    def for_plan(self, n_images: int) -> DaskEngine:
        return self

    def describe(self) -> str:
        if self.spec.scheduler is not None:
            return f"the Dask cluster at {self.spec.scheduler}"
        return f"a local Dask cluster of {self.spec.workers} worker process(es)"


@dataclass
class AutoEngine:
    """The default: a local Dask cluster of ``workers`` processes (one per core) for a plan
    of at least ``min_images`` images on ``min_cores`` cores or more, when Dask is installed;
    else this process (see :data:`AUTO_CLUSTER_MIN_CORES`)."""

    local: LocalEngine
    workers: int
    min_images: int = AUTO_CLUSTER_MIN_IMAGES
    min_cores: int = AUTO_CLUSTER_MIN_CORES
    device: str = "auto"
    intra_op_threads: int = 1

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
        self.for_plan(len(tasks))(
            model, tasks, recorder, batch_tiles=batch_tiles, progress=progress, stop=stop
        )

    def for_plan(self, n_images: int) -> Engine:
        if self.workers < self.min_cores or n_images < self.min_images:
            return self.local
        if not dask_available():
            log.info("Dask is not installed: scoring in this process (%s)", INSTALL_HINT)
            return self.local
        spec = ClusterSpec(
            workers=self.workers, device=self.device, intra_op_threads=self.intra_op_threads
        )
        return DaskEngine(spec)

    def describe(self) -> str:
        return (
            f"a local Dask cluster of {self.workers} worker processes for {self.min_images} "
            f"images or more on {self.min_cores} cores or more (Dask installed), else "
            f"{self.local.describe()}"
        )
