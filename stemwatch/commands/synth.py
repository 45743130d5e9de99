"""`stemwatch synth`: Generate synthetic label-free images, plates and live acquisitions."""

from __future__ import annotations

import argparse

from stemwatch.errors import StemwatchError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "synth",
        help="Generate synthetic label-free images, plates and live acquisitions",
        description="Generate synthetic label-free images, plates and live acquisitions.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise StemwatchError("`stemwatch synth` is not implemented yet")
