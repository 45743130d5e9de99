"""`stemwatch demo`: the whole system on a synthetic plate, on embedded defaults."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="Run the whole system on a synthetic plate",
        description=(
            "A synthetic microscope writes a plate time-lapse into WORKDIR/incoming the way "
            "instruments do; the monitor watches it with the bundled model and writes "
            "WORKDIR/stemwatch.db; the dashboard serves it. A previous run's images and "
            "database in WORKDIR are removed first. Ctrl-C stops everything."
        ),
    )
    p.add_argument(
        "--workdir", type=Path, default=Path("stemwatch-demo"), help="(./stemwatch-demo)"
    )
    p.add_argument("--wells", type=int, default=24, help="plate format: 6, 24, 96 or 384 (24)")
    p.add_argument("--fields", type=int, default=2, help="fields per well (2)")
    p.add_argument("--timepoints", type=int, default=12, help="time points, 6 h apart (12)")
    p.add_argument("--interval-s", type=float, default=8.0, help="real seconds between passes (8)")
    p.add_argument("--size", type=int, default=768, help="image side in pixels (768)")
    p.add_argument("--model", type=Path, help="ONNX model (default: the bundled one)")
    p.add_argument("--port", type=int, default=8501, help="dashboard port (8501)")
    p.add_argument("--no-dashboard", action="store_true", help="do not serve the dashboard")
    p.add_argument("--exit", action="store_true", help="exit once the acquisition is processed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stemwatch.demo import DEMO_PLATE, DemoPlan, run_demo

    plate = DEMO_PLATE.replace(
        wells=args.wells, n_fields=args.fields, n_timepoints=args.timepoints, size=args.size
    )
    plan = DemoPlan(
        workdir=args.workdir,
        plate=plate,
        interval_s=args.interval_s,
        port=None if args.no_dashboard else args.port,
        linger=not args.exit,
    )
    return run_demo(plan, model=args.model)
