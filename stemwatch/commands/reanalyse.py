"""`stemwatch reanalyse`: Re-score stored images with another model, resumably.

``stemwatch reanalyse DB --model NEW.onnx [--plate P]`` scores every current image of the
database (or of plate P) that NEW has not scored yet, from the files the daemon recorded,
and stores NEW's predictions, well series and onsets beside every other model's; the daemon's
own model stays the default view. Ctrl-C finishes the batch in flight and stops; running the
command again resumes where it stopped. See :mod:`monitor.reanalyse`.

Where it scores: ``--scheduler tcp://host:8786`` on that Dask cluster; ``--workers N`` on a
local Dask cluster of N worker processes; ``--workers 0`` in this process (decode threads,
no Dask). By default, a local cluster of one worker per core for 500 images or more on 4
cores or more when Dask is installed (the ``cluster`` extra), else this process. This process
always plans and is the one writer (:mod:`monitor.cluster`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.reanalyse import Engine


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "reanalyse",
        help="Re-score stored images with another model (resumable)",
        description=(
            "Re-score the database's images with another model: predictions, well series and "
            "onsets are kept per model; the daemon's model stays the default view. Scores on "
            "a Dask cluster (--scheduler), on local worker processes (--workers N) or in this "
            "process (--workers 0); this process is the one writer. Ctrl-C stops after the "
            "batch in flight; run again to resume."
        ),
    )
    p.add_argument(
        "db", metavar="DB", help="the daemon's database: a SQLite file or a postgresql:// URL"
    )
    p.add_argument(
        "--instrument", default=None, metavar="NAME", help="only this instrument's plates"
    )
    p.add_argument("--model", type=Path, required=True, help="the exported .onnx model")
    p.add_argument("--plate", action="append", default=None, help="only this plate (repeatable)")
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="monitor YAML whose onset settings to use (default: the built-in ones)",
    )
    p.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="(default: auto)"
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="score on the Dask cluster at ADDRESS (tcp://host:8786; dask-jobqueue on Slurm): "
        "its workers must see the images and the model at the same paths (see --path-map)",
    )
    p.add_argument(
        "--workers",
        default="auto",
        metavar="N",
        help="local Dask worker processes; 0: score in this process, no Dask (default: auto, "
        "one per core for 500 images or more on 4+ cores when Dask is installed, else 0)",
    )
    p.add_argument(
        "--decode-threads",
        type=int,
        default=2,
        metavar="N",
        help="decode threads when scoring in this process (default: 2)",
    )
    p.add_argument(
        "--path-map",
        action="append",
        default=[],
        metavar="FROM=TO",
        help="read files recorded under folder FROM from folder TO instead (the archive's "
        "mount here or on the workers); repeatable",
    )
    p.add_argument(
        "--threads", type=int, default=1, help="onnxruntime intra-op threads (default: 1)"
    )
    p.add_argument("--batch-tiles", type=int, default=64, help="tiles per inference batch (64)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import getpass
    import signal
    import threading

    from tqdm import tqdm

    from monitor.config import MonitorConfig
    from monitor.inference import load_model
    from monitor.reanalyse import parse_path_map, reanalyse
    from stemwatch import store
    from stemwatch.core.config import load_config

    onset = (load_config(MonitorConfig, args.config) if args.config else MonitorConfig()).onset
    path_map = parse_path_map(args.path_map)
    engine = choose_engine(args)
    model = load_model(args.model, device=args.device, intra_op_threads=args.threads)
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C: give up at once
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after the batch in flight (Ctrl-C again to abort)...", flush=True)

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    bar = tqdm(desc=f"re-scoring with {model.metadata.name}", unit="img", disable=None)

    def _planned(n: int) -> None:
        bar.total = n
        bar.refresh()

    try:
        with store.open_db(args.db) as db:
            summary = reanalyse(
                db,
                model,
                plates=args.plate,
                instrument=args.instrument,
                onset=onset,
                by=getpass.getuser(),
                engine=engine,
                batch_tiles=args.batch_tiles,
                path_map=path_map,
                on_plan=_planned,
                progress=bar.update,
                stop=stop,
            )
    finally:
        bar.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    rate = summary.scored / summary.seconds if summary.seconds > 0 else 0.0
    print(
        f"model {model.metadata.name} ({model.model_hash[:12]}): {summary.scored} of "
        f"{summary.planned} image(s) scored in {summary.seconds:.1f} s ({rate:.1f} img/s) in "
        f"{summary.engine}, {summary.wells_updated} well series updated, {summary.onsets} new "
        "onset(s)"
    )
    if summary.unscorable:
        print(f"{len(summary.unscorable)} image(s) not scored (they are tried again next run):")
        for u in summary.unscorable[:10]:
            print(f"  {u.path}: {u.reason}")
    if summary.interrupted:
        print(f"interrupted: {summary.remaining} image(s) left; run the same command to resume")
        return 130
    return 0


def choose_engine(args: argparse.Namespace) -> Engine:
    """The engine the options ask for; a Dask engine without Dask installed is refused here,
    before the model is loaded."""
    from monitor.cluster import INSTALL_HINT, AutoEngine, ClusterSpec, DaskEngine, dask_available
    from monitor.reanalyse import LocalEngine
    from stemwatch.core.cores import usable_cores
    from stemwatch.core.errors import ConfigError

    local = LocalEngine(args.decode_threads)
    device = args.device  # each worker chooses (auto: CUDA where it has one) and reports
    if args.workers == "auto":
        workers = None
    else:
        try:
            workers = int(args.workers)
        except ValueError:
            workers = -1
        if workers < 0:
            raise ConfigError(
                f"--workers {args.workers!r}: expected a number of worker processes (0: this "
                "process, no Dask) or 'auto'"
            )
    if args.scheduler is not None:
        if workers:
            raise ConfigError(
                f"--workers {workers} and --scheduler {args.scheduler}: the cluster at the "
                "scheduler has its own workers; give one or the other"
            )
        if not dask_available():
            raise ConfigError(f"--scheduler needs Dask: {INSTALL_HINT}")
        spec = ClusterSpec(scheduler=args.scheduler, device=device, intra_op_threads=args.threads)
        return DaskEngine(spec)
    if workers == 0:
        return local
    cores = usable_cores()
    if workers is None:
        return AutoEngine(local, workers=cores, device=device, intra_op_threads=args.threads)
    if not dask_available():
        raise ConfigError(f"--workers {workers} starts a local Dask cluster: {INSTALL_HINT}")
    return DaskEngine(ClusterSpec(workers=workers, device=device, intra_op_threads=args.threads))
