"""`stemwatch reanalyse`: Re-score stored images with another model, resumably.

``stemwatch reanalyse DB --model NEW.onnx [--plate P]`` scores every current image of the
database (or of plate P) that NEW has not scored yet, from the files the daemon recorded,
and stores NEW's predictions, well series and onsets beside every other model's; the daemon's
own model stays the default view. Ctrl-C finishes the batch in flight and stops; running the
command again resumes where it stopped. See :mod:`monitor.reanalyse`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "reanalyse",
        help="Re-score stored images with another model (resumable)",
        description=(
            "Re-score the database's images with another model: predictions, well series and "
            "onsets are kept per model; the daemon's model stays the default view. Ctrl-C "
            "stops after the batch in flight; run again to resume."
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
    p.add_argument("--workers", type=int, default=2, help="decode threads (default: 2)")
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
    from monitor.reanalyse import reanalyse
    from stemwatch import store
    from stemwatch.core.config import load_config

    onset = (load_config(MonitorConfig, args.config) if args.config else MonitorConfig()).onset
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
                decode_workers=args.workers,
                batch_tiles=args.batch_tiles,
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
        f"{summary.planned} image(s) scored in {summary.seconds:.1f} s ({rate:.1f} img/s), "
        f"{summary.wells_updated} well series updated, {summary.onsets} new onset(s)"
    )
    if summary.unscorable:
        print(f"{len(summary.unscorable)} image(s) not scored (they are tried again next run):")
        for u in summary.unscorable[:10]:
            print(f"  {u.path}: {u.reason}")
    if summary.interrupted:
        print(f"interrupted: {summary.remaining} image(s) left; run the same command to resume")
        return 130
    return 0
