"""`stemwatch demo`: Run the whole system on a synthetic plate."""

from __future__ import annotations

import argparse

from stemwatch.errors import StemwatchError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="Run the whole system on a synthetic plate",
        description="Run the whole system on a synthetic plate.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise StemwatchError("`stemwatch demo` is not implemented yet")
