"""Realism gauge before and after a generator change: a markdown table and a bar chart.

    python tests/benchmarks/realism_before_after.py BEFORE AFTER -o docs/realism_before_after.png

BEFORE and AFTER each hold one folder per gauge run (``stemwatch synth realism ... -o
BEFORE/colonies-basic``); runs present in both are compared, in name order.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stemwatch.evaluation.realism import comparison_table, load_summary, plot_comparison


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True, help="PNG to write")
    args = ap.parse_args(argv)
    names = sorted(
        p.name for p in args.before.iterdir() if (args.after / p.name / "report.json").is_file()
    )
    rows = [(n, load_summary(args.before / n), load_summary(args.after / n)) for n in names]
    print(comparison_table(rows))
    print(f"wrote {plot_comparison(args.out, rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
