"""`stemwatch dashboard`: Open the Streamlit dashboard on a results database."""

from __future__ import annotations

import argparse

from stemwatch.errors import StemwatchError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dashboard",
        help="Open the Streamlit dashboard on a results database",
        description="Open the Streamlit dashboard on a results database.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise StemwatchError("`stemwatch dashboard` is not implemented yet")
