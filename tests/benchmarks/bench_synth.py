"""Benchmark of the synthetic microscope; prints seconds per plate time point.

    nice -n 10 python tests/benchmarks/bench_synth.py [--wells 96] [--workers 2] [--size 1024]

Target (issue 3): one 96-well x 4-field time point at 1024x1024 on 2 cores well under a
minute (a real instrument needs many minutes per pass). Rendering, TIFF encoding and writing
(uncompressed OME-TIFF, 16-bit) are all counted. ``--wells`` below 96 measures that many wells
and extrapolates linearly to 96 (said so in the output). Measured at 0 h (compact colonies)
and 48 h (grown, touching, differentiating colonies: the slowest case). Prints wall time and
CPU time (this process plus its worker processes): on a shared, loaded machine CPU time / 2 is
the better estimate of the wall time on 2 idle cores. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from stemwatch.core.wells import plate_format
from stemwatch.synth.plate import plan_plate, write_timepoint
from stemwatch.synth.spec import PlateSpec


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the worker processes)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wells", type=int, default=96, help="wells to measure (<= 96)")
    ap.add_argument("--fields", type=int, default=4)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--compression", default=None)
    args = ap.parse_args(argv)
    n_wells = max(1, min(96, args.wells))
    names = plate_format(96).wells()[:n_wells]
    plan = plan_plate(
        PlateSpec(wells=names, n_fields=args.fields, times_h=(0.0, 48.0), size=args.size, seed=1)
    )
    print(
        f"synth bench: {n_wells} wells x {args.fields} fields at {args.size}², "
        f"{args.workers} worker process(es), compression={args.compression}, "
        f"{os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.2f}"
    )
    # single-process render cost per image, warm caches first
    plan.render(names[0], 0, 0)
    for t, label in ((0, "0 h"), (1, "48 h")):
        per, cpu_per = [], []
        for w in names[: min(6, n_wells)]:
            t0, c0 = time.perf_counter(), _cpu_s()
            plan.render(w, 0, t)
            per.append(time.perf_counter() - t0)
            cpu_per.append(_cpu_s() - c0)
        print(
            f"  render only, one process, {label}: median {statistics.median(per):.3f} s/image, "
            f"{statistics.median(cpu_per):.3f} CPU-s/image (all its threads)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        for t, label in ((0, "0 h"), (1, "48 h")):
            out = Path(tmp) / f"t{t}"
            out.mkdir()
            cpu0 = _cpu_s()
            t0 = time.perf_counter()
            files = write_timepoint(
                plan, t, out, compression=args.compression, workers=args.workers
            )
            dt = time.perf_counter() - t0
            cpu = _cpu_s() - cpu0
            scale = 96 / n_wells
            note = "" if n_wells == 96 else f" (extrapolated from {n_wells} wells)"
            mb = sum(f.stat().st_size for f in files) / 1e6
            print(
                f"  time point {label}: {len(files)} images, {mb:.0f} MB: wall {dt:.1f} s, "
                f"CPU {cpu:.1f} s ({cpu / len(files):.3f} CPU-s/image)\n"
                f"    -> per 96-well x {args.fields}-field time point{note}: wall "
                f"{dt * scale:.1f} s here; on 2 idle cores ~{cpu * scale / 2:.1f} s "
                f"(CPU time / 2)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
