"""`stemwatch export`: Export a trained checkpoint to ONNX with its metadata."""

from __future__ import annotations

import argparse

from stemwatch.errors import StemwatchError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export",
        help="Export a trained checkpoint to ONNX with its metadata",
        description="Export a trained checkpoint to ONNX with its metadata.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise StemwatchError("`stemwatch export` is not implemented yet")
