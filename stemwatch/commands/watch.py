"""`stemwatch watch`: Watch a folder and run the model on each new image."""

from __future__ import annotations

import argparse

from stemwatch.errors import StemwatchError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "watch",
        help="Watch a folder and run the model on each new image",
        description="Watch a folder and run the model on each new image.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise StemwatchError("`stemwatch watch` is not implemented yet")
