"""`stemwatch bench`: Measure throughput, latency and memory of the monitor pipeline."""

from __future__ import annotations

import argparse

from stemwatch.errors import StemwatchError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="Measure throughput, latency and memory of the monitor pipeline",
        description="Measure throughput, latency and memory of the monitor pipeline.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise StemwatchError("`stemwatch bench` is not implemented yet")
