"""`stemwatch evaluate`: Evaluate a model on labelled images (JSON + Markdown report)."""

from __future__ import annotations

import argparse

from stemwatch.errors import StemwatchError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "evaluate",
        help="Evaluate a model on labelled images (JSON + Markdown report)",
        description="Evaluate a model on labelled images (JSON + Markdown report).",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise StemwatchError("`stemwatch evaluate` is not implemented yet")
