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
    for name in ("decode-workers", "inference-workers", "intra-op-threads"):
        p.add_argument(
            f"--{name}",
            type=_threads,
            default="auto",
            metavar="N",
            help=f"inference.{name.replace('-', '_')} of the daemon: a count, or auto (sized "
            "from the cores, as the daemon does)",
        )
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
    p.add_argument(
        "--int8",
        nargs="?",
        const=True,
        default=None,
        type=Path,
        metavar="PATH",
        help="also compare the model's speed with its int8 version (PATH, from `stemwatch "
        "export --int8`; without PATH it is quantised here on the bench's synthetic tiles), "
        "at batch 1 and the monitor's batch, 1 and 2 threads",
    )
    p.add_argument("--workdir", type=Path, help="keep files here (default: a temp folder)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    p.set_defaults(func=run)


def _threads(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(
            f"expected a thread count of at least 1 or auto, got {text!r}"
        )
    return n


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
    figures = as_dict(result)
    if args.int8:
        figures["int8"] = compare_int8(args, result.model)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def compare_int8(args: argparse.Namespace, description: str) -> dict[str, object]:
    """``--int8``: the benchmarked model against its int8 version (stemwatch.evaluation.int8)."""
    import tempfile

    from stemwatch.evaluation.int8 import bench_int8
    from stemwatch.evaluation.monitor_bench import pick_model

    with tempfile.TemporaryDirectory(prefix="stemwatch-bench-int8-") as tmp:
        workdir = args.workdir or Path(tmp)
        fp32, _ = pick_model(args.model, workdir, args.standin_width)
        out = bench_int8(
            fp32,
            None if args.int8 is True else args.int8,
            workdir,
            size=args.size,
            repeats=args.repeat,
        )
    print(f"model: {description}; int8: {out['int8']}")
    print("\n".join(out.pop("lines")))
    close = out["agreement_on_bench_tiles"]
    probs = next(v for k, v in close.items() if isinstance(v, dict) and "class_changed" in v)
    print(
        f"  on {close['n_tiles']} bench tiles: mean |int8 - fp32| of the probabilities "
        f"{probs['mean_abs_diff']:.4f}, max {probs['max_abs_diff']:.3f} (accuracy: see "
        "`stemwatch export --int8`, on the run's held-out split)"
    )
    return out
