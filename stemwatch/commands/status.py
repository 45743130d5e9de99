"""`stemwatch status`: Print what the daemon is doing, from its database."""

from __future__ import annotations

import argparse

from stemwatch.errors import StemwatchError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "status",
        help="Print what the daemon is doing, from its database",
        description="Print what the daemon is doing, from its database.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise StemwatchError("`stemwatch status` is not implemented yet")
