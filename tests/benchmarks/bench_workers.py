"""Backlog throughput of the daemon under several worker settings, interleaved (issue 14 item 4).

Run: ``nice -n 10 python tests/benchmarks/bench_workers.py [--backlog 300] [--rounds 3]``

Each round runs ``stemwatch watch --once`` over the same backlog of 2048² uint16 OME-TIFFs
(uncompressed) once per setting, in turn, so that a change in the machine's load hits every
setting alike. Prints, per setting: images/s, CPU ms per image, and the CPU-bound limit
(cores / CPU seconds per image) with the fraction reached, median and range over rounds.
On a shared machine throughput follows the load of others; the CPU per image less so.
Not a test: asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
from pathlib import Path

from stemwatch.core.cores import usable_cores
from stemwatch.evaluation.monitor_bench import bench_backlog, pick_model

SETTINGS = {  # name: (inference_workers, intra_op_threads, decode_workers)
    "auto": ("auto", "auto", "auto"),
    "1x1 infer, 2 decode (before)": (1, 1, 2),
    "1x2 infer, 2 decode": (1, 2, 2),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backlog", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=2048)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cores = usable_cores()
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="stemwatch-bench-workers-") as tmp:
        work = Path(tmp)
        model_path, description = pick_model(None, work, None)
        for r in range(args.rounds):
            for i, (name, (inf, intra, dec)) in enumerate(SETTINGS.items()):
                run_dir = work / f"round{r}-setting{i}"  # a fresh folder and database per run
                run_dir.mkdir()
                config = (
                    "watch:\n  quiet_period_s: 2.0\ninference:\n"
                    f"  inference_workers: {inf}\n  intra_op_threads: {intra}\n"
                    f"  decode_workers: {dec}\n"
                )
                b = bench_backlog(
                    run_dir,
                    model_path,
                    n=args.backlog,
                    size=args.size,
                    compression=None,
                    config_text=config,
                )
                figures[name].append(b)
                print(
                    f"round {r + 1} {name}: {b['images_per_s']:.2f} images/s, "
                    f"{b['cpu_ms_per_image']:.1f} ms CPU/image",
                    flush=True,
                )
    print(f"\nmodel: {description}; {cores} cores; {args.backlog} images per run")
    for name, runs in figures.items():
        ips = [b["images_per_s"] for b in runs]
        cpu = [b["cpu_ms_per_image"] for b in runs]
        frac = [b["images_per_s"] * b["cpu_ms_per_image"] / (cores * 1000) for b in runs]
        print(
            f"{name:30s} {statistics.median(ips):6.2f} images/s ({min(ips):.2f}-{max(ips):.2f}), "
            f"CPU {statistics.median(cpu):5.1f} ms/image ({min(cpu):.1f}-{max(cpu):.1f}), "
            f"{statistics.median(frac):.0%} of the CPU-bound limit "
            f"({min(frac):.0%}-{max(frac):.0%}); median (range) of {len(runs)} rounds"
        )


if __name__ == "__main__":
    main()
