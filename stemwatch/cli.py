"""The ``stemwatch`` command line: a thin dispatcher over one module per subcommand.

Each module in :mod:`stemwatch.commands` exposes ``register(subparsers)``, which adds its parser
and sets ``func`` (``args -> exit code``). Heavy imports (torch, onnxruntime, streamlit) happen
inside ``func``, so ``stemwatch --help`` is instant and the monitor never pulls in torch.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from stemwatch import __version__
from stemwatch.commands import COMMANDS
from stemwatch.core.errors import StemwatchError
from stemwatch.core.paths import printable

log = logging.getLogger("stemwatch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stemwatch",
        description="Label-free detection of stem cell differentiation beside the microscope.",
    )
    parser.add_argument("--version", action="version", version=f"stemwatch {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging verbosity (default: INFO)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


class OneLineFormatter(logging.Formatter):
    """Each record on one line: control characters in the message (a file name holding a
    newline, an escape sequence) are escaped, so no line of the log can be forged. A
    traceback, which is the formatter's own text, keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = printable(record.message)
        return super().formatMessage(record)


def configure_logging(level: str) -> None:
    # under torchrun every process logs to the same terminal: say which rank speaks
    rank = f" rank{os.environ['RANK']}" if "RANK" in os.environ else ""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        OneLineFormatter(
            f"%(asctime)s{rank} %(levelname)-7s %(name)s: %(message)s",
            datefmt="%Y-%m-%d %H:%M:%S",
        )
    )
    logging.basicConfig(level=getattr(logging, level), handlers=[handler])


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except StemwatchError as exc:
        print(f"stemwatch {args.command}: error: {printable(exc)}", file=sys.stderr)
        # 2: fix the input and run again; some errors say otherwise (a database held by
        # another daemon: 75, try again later; a daemon thread that died: 70)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
