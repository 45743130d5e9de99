"""`stemwatch alert-test`: Send a test message through every configured alert channel."""

from __future__ import annotations

import argparse

from stemwatch.errors import StemwatchError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "alert-test",
        help="Send a test message through every configured alert channel",
        description="Send a test message through every configured alert channel.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise StemwatchError("`stemwatch alert-test` is not implemented yet")
