"""`stemwatch watch`: Watch a folder and run the model on each new image."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# Containers and services set these instead of command-line flags (the flags win).
DB_ENV = "STEMWATCH_DB"
INSTRUMENT_ENV = "STEMWATCH_INSTRUMENT"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "watch",
        help="Watch a folder and run the model on each new image",
        description=(
            "Watch FOLDER (the microscope's output), run the model on every complete image once, "
            "store results (a SQLite file, or a facility's PostgreSQL database), detect per-well "
            "onset and alert. Runs in the foreground; SIGTERM/SIGINT finish the batch in flight, "
            "flush and exit. SIGHUP (or replacing the model file, e.g. mv new.onnx model.onnx) "
            "takes the new model without a restart: the batch in flight finishes with the old "
            "one, the switch is stored. Exit status: 0 done; 1 with --once when an image "
            "failed; 2 bad configuration; 70 a daemon thread died (systemd restarts it); 75 "
            "another daemon uses the database as this instrument."
        ),
    )
    p.add_argument(
        "folder", type=Path, nargs="?", help="folder to watch (else `folder:` in config)"
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="monitor YAML config")
    p.add_argument(
        "--db",
        metavar="PATH|URL",
        help="SQLite file or postgresql://USER@HOST/DBNAME (overrides $STEMWATCH_DB, which "
        "overrides `database:` of the config)",
    )
    p.add_argument(
        "--instrument",
        metavar="NAME",
        help="this instrument's name, recorded on every row (default: $STEMWATCH_INSTRUMENT, "
        "else `instrument:` of the config, else the host name); one per daemon when several "
        "share a database",
    )
    p.add_argument("--model", type=Path, metavar="PATH", help="exported .onnx model")
    p.add_argument("--once", action="store_true", help="process what is there, then exit")
    p.add_argument(
        "--require-gpu", action="store_true", help="fail instead of falling back to the CPU"
    )
    p.add_argument(
        "--polling", action="store_true", help="poll the folder (network shares) instead of inotify"
    )
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> object:
    """The config file with the command line's overrides applied (validated)."""
    from monitor.config import MonitorConfig
    from stemwatch.core.config import load_config, validate_mapping

    cfg = load_config(MonitorConfig, args.config)
    data = cfg.model_dump()
    if args.folder is not None:
        data["folder"] = args.folder
    db = args.db or os.environ.get(DB_ENV)
    if db:
        data["database"] = db
    instrument = args.instrument or os.environ.get(INSTRUMENT_ENV)
    if instrument:
        data["instrument"] = instrument
    if args.model is not None:
        data["inference"]["model"] = args.model
    if args.require_gpu:
        data["inference"]["require_gpu"] = True
    if args.polling:
        data["watch"]["polling"] = True
    return validate_mapping(MonitorConfig, data, "command line")


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from monitor.config import MonitorConfig
    from monitor.daemon import Daemon

    # tifffile logs every half-written file at ERROR; the daemon reports those itself
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)
    cfg = build_config(args)
    assert isinstance(cfg, MonitorConfig)
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        daemon = Daemon(cfg, once=args.once, stop=stop)
        if hasattr(signal, "SIGHUP"):  # not on Windows: there, replace the model file

            def _reload(signum: int, frame: object) -> None:
                daemon.request_model_reload("SIGHUP")

            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, _reload)
        summary = daemon.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print(
        f"stemwatch watch: {summary.done} processed, {summary.failed} failed, "
        f"{summary.ignored} skipped, {summary.duplicates} duplicates, {summary.moved} moved "
        f"({summary.provider})"
    )
    if args.once and summary.failed:
        print(
            f"stemwatch watch: {summary.failed} image(s) failed; `stemwatch status` lists why",
        )
        return 1
    return 0
