"""`stemwatch bench`: Measure throughput, latency and memory of the monitor pipeline."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="Measure throughput, latency and memory of the monitor pipeline",
        description=(
            "Measure the monitor on synthetic 16-bit OME-TIFFs (uncompressed and deflate): "
            "per-stage cost, inference alone, a backlog run of `stemwatch watch --once` "
            "(rate, peak memory) and close-to-database latency at one image per second. "
            "Runs without torch: uses the bundled model, else builds a FastNet-shaped stand-in."
        ),
    )
    p.add_argument("--model", type=Path, metavar="PATH", help="ONNX model (default: bundled)")
    p.add_argument("--size", type=int, default=2048, help="image side in pixels (2048)")
    p.add_argument("--backlog", type=int, default=2000, help="images in the backlog run (2000)")
    p.add_argument("--latency-images", type=int, default=30, help="images in the latency run")
    p.add_argument(
        "--rate", type=float, default=1.0, help="images/s written in the latency run (1.0)"
    )
    p.add_argument(
        "--inference-images", type=int, default=200, help="images in the inference-alone run"
    )
    p.add_argument(
        "--preprocess-images",
        type=int,
        default=60,
        help="images in the preprocessing-alone run (60)",
    )
    p.add_argument("--repeat", type=int, default=5, help="best of N for the per-stage times (5)")
    p.add_argument("--quiet", type=float, default=2.0, help="quiet period in seconds (2.0)")
    p.add_argument("--decode-workers", type=int, default=2)
    p.add_argument("--inference-workers", type=int, default=1)
    p.add_argument("--intra-op-threads", type=int, default=1)
    p.add_argument(
        "--compression",
        action="append",
        choices=["none", "zlib"],
        help="TIFF compression(s) to measure (default: both)",
    )
    p.add_argument(
        "--skip", action="append", choices=["backlog", "latency"], default=[], help="skip a part"
    )
    p.add_argument(
        "--standin-width",
        type=float,
        metavar="W",
        help="benchmark a stand-in FastNet with channels x W instead of the bundled model",
    )
    p.add_argument("--workdir", type=Path, help="keep files here (default: a temp folder)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import logging

    from stemwatch.evaluation.monitor_bench import as_dict, format_result, run_bench

    for name in ("monitor.pipeline", "monitor.daemon", "monitor.watcher", "stemwatch.store"):
        logging.getLogger(name).setLevel(logging.WARNING)  # not one line per image
    comps = tuple(None if c == "none" else c for c in (args.compression or ["none", "zlib"]))
    result = run_bench(
        model_path=args.model,
        size=args.size,
        backlog=args.backlog,
        latency_images=args.latency_images,
        quiet_s=args.quiet,
        compressions=comps,
        decode_workers=args.decode_workers,
        inference_workers=args.inference_workers,
        intra_op_threads=args.intra_op_threads,
        workdir=args.workdir,
        skip=tuple(args.skip),
        standin_width=args.standin_width,
        repeat=args.repeat,
        inference_images=args.inference_images,
        preprocess_images=args.preprocess_images,
        rate_hz=args.rate,
    )
    print(format_result(result))
    if args.json:
        args.json.write_text(json.dumps(as_dict(result), indent=2))
    return 0
