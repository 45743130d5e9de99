"""`stemwatch label`: Label phase-contrast blocks from paired immunofluorescence (Kusumoto)."""

from __future__ import annotations

import argparse

from stemwatch.errors import StemwatchError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "label",
        help="Label phase-contrast blocks from paired immunofluorescence (Kusumoto)",
        description="Label phase-contrast blocks from paired immunofluorescence (Kusumoto).",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise StemwatchError("`stemwatch label` is not implemented yet")
