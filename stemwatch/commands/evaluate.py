"""`stemwatch evaluate`: Evaluate a model on labelled images (JSON + Markdown report).

The model is a training checkpoint (``.pt``) or an exported ``.onnx`` file (run through
onnxruntime with the preprocessing recorded in its metadata).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "evaluate",
        help="Evaluate a model on labelled images (JSON + Markdown report)",
        description=(
            "Evaluate a checkpoint (.pt) or exported model (.onnx) on a manifest or class "
            "folders, at image level (mean of tile probabilities) and tile level."
        ),
    )
    p.add_argument("model", type=Path, help="checkpoint .pt or exported .onnx")
    p.add_argument("data", type=Path, help="manifest CSV or a folder with one sub-folder per class")
    p.add_argument("-o", "--out", type=Path, required=True, help="report folder")
    p.add_argument(
        "--max-unreadable-fraction",
        type=float,
        default=0.05,
        help="stop when more than this share of images cannot be read (0.05)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from trainer.data import load_samples
    from trainer.evaluate import evaluate_predictor, load_predictor
    from trainer.report import write_report

    predictor = load_predictor(args.model)
    is_csv = args.data.suffix.lower() == ".csv"
    samples = load_samples(
        manifest=args.data if is_csv else None,
        folder=None if is_csv else args.data,
        classes=predictor.class_names,
    )
    result = evaluate_predictor(
        predictor, samples, max_unreadable_fraction=args.max_unreadable_fraction
    )
    json_path, md_path = write_report(result, args.out, title=f"Evaluation of {args.model.name}")
    image = result["image"]
    summary = {k: image.get(k) for k in ("n", "accuracy", "balanced_accuracy", "roc_auc", "ece")}
    print(json.dumps({"report": str(md_path), "metrics": str(json_path), **summary}, indent=2))
    return 0
