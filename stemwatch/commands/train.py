"""`stemwatch train`: Train a CNN on labelled images."""

from __future__ import annotations

import argparse

from stemwatch.errors import StemwatchError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "train",
        help="Train a CNN on labelled images",
        description="Train a CNN on labelled images.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise StemwatchError("`stemwatch train` is not implemented yet")
