"""Compare architectures on one synthetic set: accuracy, F1, accuracy per hour, size, speed.

    nice -n 10 python tests/benchmarks/compare_architectures.py [--data MANIFEST] [--out DIR]

Every network trains on the same generated images with the same grouped split (a quarter of
the wells held out) on CPU. The large networks get fewer epochs and smaller tiles (a 2-core
machine shared with others; see ``SETTINGS``). Prints a Markdown table (the one in
docs/architectures.md) and writes ``comparison.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

# architecture -> (epochs, downsample, tile size, max minutes of training). All use
# downsample 2 (cell texture survives) and at most 4 tiles per image; the two large networks
# get 64 px tiles (4 of the 16 per image) and the wall-clock cap ends them after few epochs.
SETTINGS: dict[str, tuple[int, int, int, float]] = {
    "fastnet": (25, 2, 128, 2.5),
    "lenet5": (25, 2, 128, 1.5),
    "alexnet": (10, 2, 128, 2.0),
    "resnet18": (10, 2, 128, 2.5),
    "resnet50": (5, 2, 64, 2.5),
    "densenet121": (5, 2, 64, 2.5),
}


def inference_ms_per_tile(arch: str, tile: int, threads: int, batch: int = 32) -> float:
    """Median CPU time per tile of a batched eval-mode forward pass (torch)."""
    import torch

    from trainer.architectures import create

    torch.set_num_threads(threads)
    model = create(arch).eval()
    x = torch.rand(batch, 1, tile, tile)
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(3):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return 1000 * sorted(times)[1] / batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="existing manifest (default: generate one)")
    ap.add_argument("--out", type=Path, help="keep runs here (default: temp dir)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--architectures", nargs="*", default=list(SETTINGS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--cap-scale",
        type=float,
        default=1.0,
        help="multiply every network's epoch limit and time cap (an idle machine affords more)",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    import torch

    from stemwatch.core.config import validate_mapping
    from trainer.architectures import create
    from trainer.config import TrainerConfig
    from trainer.metric_intervals import interval_text
    from trainer.train import run_training

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        manifest = args.data
        if manifest is None:
            from stemwatch.synth.dataset import generate_dataset

            manifest = generate_dataset(
                root / "data", n_experiments=2, wells_per_class=6, fields_per_well=3,
                seed=args.seed, workers=args.threads,
            )  # fmt: skip
        rows: list[dict[str, Any]] = []
        for arch in args.architectures:
            epochs, down, tile, minutes = SETTINGS[arch]
            epochs, minutes = round(epochs * args.cap_scale), minutes * args.cap_scale
            cfg = validate_mapping(
                TrainerConfig,
                {
                    "data": {
                        "manifest": str(manifest),
                        "tiling": {"downsample": down, "tile_size": tile, "max_tiles": 4},
                    },
                    "split": {"group_by": "well", "test_fraction": 0.25, "val_fraction": 0.2},
                    "model": {"architecture": arch},
                    "optim": {
                        "epochs": epochs, "batch_size": 32, "patience": 6,
                        "max_minutes": minutes, "lr": 1e-3,
                    },
                    "runtime": {
                        "threads": args.threads, "device": "cpu", "progress": False,
                        "out_dir": str(root / arch), "seed": args.seed,
                    },
                },
                arch,
            )  # fmt: skip
            t0 = time.perf_counter()
            summary = run_training(cfg)
            seconds = time.perf_counter() - t0
            image = summary["test"]["image"]
            rows.append(
                {
                    "architecture": arch,
                    "epochs": f"{summary['epochs_run']}/{epochs}",
                    "input": f"{tile} px (1/{down})",
                    "accuracy": image["accuracy"],
                    "balanced_accuracy": image["balanced_accuracy"],
                    "balanced_accuracy_95": interval_text(image["intervals"]["balanced_accuracy"]),
                    "test_wells": image["bootstrap"]["n_groups"],
                    "macro_f1": image["macro_f1"],
                    "roc_auc": image["roc_auc"],
                    "accuracy_by_hours": {
                        h: v["accuracy"] for h, v in image["accuracy_by_hours"].items()
                    },
                    "parameters": sum(p.numel() for p in create(arch).parameters()),
                    "ms_per_tile": inference_ms_per_tile(arch, tile, args.threads),
                    "train_s": seconds,
                }
            )
            logging.info("%s done in %.0f s", arch, seconds)
        (root / "comparison.json").write_text(json.dumps(rows, indent=2))
        print(markdown_table(rows))


def markdown_table(rows: list[dict[str, Any]]) -> str:
    hours = sorted({h for r in rows for h in r["accuracy_by_hours"]}, key=float)
    head = ["architecture", "input", "epochs", "test wells", "accuracy", "bal. acc. [95 % CI]"]
    head += ["macro F1", "ROC-AUC"]
    head += [f"acc. {h} h" for h in hours] + ["parameters", "CPU ms/tile", "train s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["architecture"], r["input"], r["epochs"], str(r["test_wells"])]
        cells += [f"{r['accuracy']:.3f}", r["balanced_accuracy_95"]]
        cells += [f"{r[k]:.3f}" for k in ("macro_f1", "roc_auc")]
        cells += [f"{r['accuracy_by_hours'].get(h, float('nan')):.2f}" for h in hours]
        cells += [
            f"{r['parameters'] / 1e6:.2f} M",
            f"{r['ms_per_tile']:.2f}",
            f"{r['train_s']:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
