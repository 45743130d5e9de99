"""Benchmark: train the default architecture on CPU on a synthetic set; test on held-out wells.

    nice -n 10 python tests/benchmarks/bench_train.py [--threads 2] [--keep DIR]

Generates a labelled set with :func:`stemwatch.synth.dataset.generate_dataset` (default
difficulty), trains ``fastnet`` with the default tiling (what the monitor does), holds out a
quarter of the wells (grouped, stratified) and prints the wall time and image-level metrics,
including accuracy per hour since induction, each with its 95 % interval from a bootstrap
over the held-out wells. Labels follow the condition (Waisman et al.): induced wells at 0 h
are labelled differentiated although nothing has changed yet, so the balanced accuracy is
also printed for images from ``--from-hours`` on.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process: on a shared machine, wall time says little."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=2)
    ap.add_argument("--wells", type=int, default=6, help="wells per class per experiment")
    ap.add_argument("--fields", type=int, default=3)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--difficulty", default="default")
    ap.add_argument(
        "--label-by",
        default="condition",
        choices=["condition", "state"],
        help="synth labels: the well's condition (Waisman) or its true state at that hour",
    )
    ap.add_argument("--architecture", default="fastnet")
    ap.add_argument(
        "--downsample",
        type=int,
        default=2,
        help="tiling downsample (cell texture is lost at 4 on 512 px synthetic fields)",
    )
    ap.add_argument("--tile", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--max-minutes", type=float, default=9.0, help="training time cap")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--from-hours", type=float, default=12.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, help="reuse a generated manifest instead")
    ap.add_argument("--keep", type=Path, help="write data and run here instead of a temp dir")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    import torch

    from stemwatch.core.config import validate_mapping
    from stemwatch.synth.dataset import generate_dataset
    from trainer.config import TrainerConfig
    from trainer.metric_intervals import figure_intervals, hours_interval_text, interval_text
    from trainer.train import run_training

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        t0 = time.perf_counter()
        manifest = args.data or generate_dataset(
            root / "data",
            n_experiments=args.experiments,
            wells_per_class=args.wells,
            fields_per_well=args.fields,
            size=args.size,
            difficulty=args.difficulty,
            seed=args.seed,
            label_by=args.label_by,
            workers=args.threads,
        )
        t_gen = time.perf_counter() - t0
        cfg = validate_mapping(
            TrainerConfig,
            {
                "data": {
                    "manifest": str(manifest),
                    "tiling": {"downsample": args.downsample, "tile_size": args.tile},
                },
                "split": {"group_by": "well", "test_fraction": 0.25, "val_fraction": 0.2},
                "model": {"architecture": args.architecture},
                "optim": {
                    "epochs": args.epochs,
                    "batch_size": 32,
                    "patience": 8,
                    "max_minutes": args.max_minutes,
                },
                "runtime": {
                    "threads": args.threads,
                    "device": "cpu",
                    "out_dir": str(root / "run"),
                    "seed": args.seed,
                    "progress": False,
                },
            },
            "bench_train",
        )
        t1, cpu1 = time.perf_counter(), _cpu_seconds()
        summary = run_training(cfg)
        t_train, cpu_train = time.perf_counter() - t1, _cpu_seconds() - cpu1
        image = summary["test"]["image"]
        preds = summary["test"]["predictions"]
        late = [
            p
            for p in preds
            if p["probabilities"] is not None
            and (p["hours_since_induction"] or 0) >= args.from_hours
        ]
        names = cfg.data.classes
        late_figures, _ = figure_intervals(
            np.array([p["probabilities"] for p in late]),
            np.array([names.index(p["label"]) for p in late]),
            [p["group"] for p in late],
            names.index(cfg.data.positive_class),
        )
        intervals = image["intervals"]
        result = {
            "test_images": len(preds),
            "generate_s": round(t_gen, 1),
            "train_and_eval_s": round(t_train, 1),
            "train_and_eval_cpu_s": round(cpu_train, 1),
            "epochs_run": summary["epochs_run"],
            "best_epoch": summary["best_epoch"],
            "threads": args.threads,
            "test_wells": image["bootstrap"]["n_groups"],
            "test_balanced_accuracy": interval_text(intervals["balanced_accuracy"]),
            "test_accuracy": interval_text(intervals["accuracy"]),
            "test_roc_auc": interval_text(intervals.get("roc_auc")),
            f"test_balanced_accuracy_from_{args.from_hours:g}h": late_figures[
                "balanced_accuracy"
            ].text(),
            "ece": interval_text(intervals["ece"]),
            "temperature": round(summary["temperature"], 3),
            "accuracy_by_hours": {
                h: hours_interval_text(v) for h, v in image["accuracy_by_hours"].items()
            },
            "intervals": "95 % percentile bootstrap over the held-out wells",
            "warnings": summary["test"]["warnings"],
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
