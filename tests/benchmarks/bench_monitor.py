"""Benchmark of the monitor pipeline against the issue's targets; prints figures.

    nice -n 10 python tests/benchmarks/bench_monitor.py [--backlog 2000] [--model PATH]

Targets (2 CPU cores, 2048² uint16 OME-TIFF, uncompressed and deflate, default model):
sustained >= 6.4 images/s; latency close->DB median and p95 <= quiet period + 1 s at one
image per second; a 2,000-image backlog at >= 80 % of inference alone; peak RSS < 1.5 GB.
Not a test: it asserts nothing, it prints the figures and whether each target is met.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from stemwatch.evaluation.monitor_bench import format_result, run_bench

NEEDED_IPS = 96 * 4 / 600  # a 96-well plate, 4 fields, every 10 minutes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--backlog", type=int, default=2000)
    ap.add_argument("--latency-images", type=int, default=30)
    ap.add_argument("--quiet", type=float, default=2.0)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--standin-width", type=float, help="stand-in FastNet with channels x W")
    ap.add_argument("--skip", action="append", choices=["backlog", "latency"], default=[])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    r = run_bench(
        model_path=args.model,
        size=args.size,
        backlog=args.backlog,
        latency_images=args.latency_images,
        quiet_s=args.quiet,
        standin_width=args.standin_width,
        skip=tuple(args.skip),
    )
    print(format_result(r))
    print()
    print(f"needed by a 96-well x 4-field plate every 10 min: {NEEDED_IPS:.2f} images/s")
    for tag, b in r.backlog.items():
        ips = b["images_per_s"]
        infer = b["inference_only_ips"]
        print(
            f"[{tag}] throughput {ips:.2f} images/s = {ips / NEEDED_IPS:.1f}x need "
            f"(target >= 10x: {'met' if ips >= 10 * NEEDED_IPS else 'NOT met'}); "
            f"{ips / infer:.0%} of inference alone (target >= 80%: "
            f"{'met' if ips >= 0.8 * infer else 'NOT met'}; "
            f"{b['of_slowest_stage']:.0%} of the slowest stage alone); "
            f"peak RSS {b['peak_rss_mb']:.0f} MB (target < 1536: "
            f"{'met' if b['peak_rss_mb'] < 1536 else 'NOT met'})"
        )
    if r.latency_s:
        limit = args.quiet + 1.0
        lt = r.latency_s
        ok = lt["median_s"] <= limit and lt["p95_s"] <= limit
        print(
            f"latency median {lt['median_s']:.2f} s, p95 {lt['p95_s']:.2f} s "
            f"(target <= {limit:.1f} s: {'met' if ok else 'NOT met'})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
