"""`stemwatch evaluate`: Evaluate a model on held-out images, every figure with its 95 % interval.

``stemwatch evaluate RUN/best.pt -o OUT`` scores the checkpoint's own held-out split (the
split travels in the checkpoint). ``stemwatch evaluate MODEL DATA -o OUT`` scores a manifest or
class folders, after checking that none of its images (or wells) were in the model's training
or validation data; seen images are refused unless ``--allow-seen``, and then the terminal
output, ``metrics.json`` and ``report.md`` all say so in their first line. The model is a
training checkpoint (``.pt``) or an exported ``.onnx`` file (run through onnxruntime with the
preprocessing recorded in its metadata).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "evaluate",
        help="Evaluate a model on held-out images, with 95 %% intervals (JSON + Markdown report)",
        description=(
            "Evaluate a checkpoint (.pt) on its run's held-out split, or a checkpoint or "
            "exported model (.onnx) on a manifest or class folders it was not trained on, at "
            "image level (mean of tile probabilities) and tile level; 95 % intervals from a "
            "bootstrap over wells (or the split's grouping unit)."
        ),
    )
    p.add_argument("model", type=Path, help="checkpoint .pt or exported .onnx")
    p.add_argument(
        "data",
        type=Path,
        nargs="?",
        help="manifest CSV or a folder with one sub-folder per class; leave out to evaluate a "
        "checkpoint on its run's held-out split",
    )
    p.add_argument("-o", "--out", type=Path, required=True, help="report folder")
    p.add_argument(
        "--allow-seen",
        action="store_true",
        help="score images (or wells) the model was trained or validated on instead of "
        "refusing; every output then says so in its first line",
    )
    p.add_argument(
        "--group-by",
        choices=["well", "plate", "experiment"],
        help="unit of the bootstrap intervals (default: the model's split's grouping unit)",
    )
    p.add_argument(
        "--max-unreadable-fraction",
        type=float,
        default=0.05,
        help="stop when more than this share of images cannot be read (0.05)",
    )
    p.set_defaults(func=run)


def summary_lines(result: dict[str, Any], model: Path) -> list[str]:
    """What the terminal shows: the notice (if any) first, then every figure with its
    interval, accuracy per hours, the bootstrap's unit and the warnings."""
    from trainer.metric_intervals import (
        FIGURES,
        UNIT_PLURAL,
        from_hours_text,
        hours_interval_text,
        interval_text,
    )

    image = result.get("image", {})
    boot = image.get("bootstrap") or {}
    unit = boot.get("unit", "group")
    units = UNIT_PLURAL.get(unit, f"{unit} groups")
    lines = [result["notice"]] if result.get("notice") else []
    kind = "Held-out evaluation" if result.get("held_out") else "Evaluation"
    lines.append(
        f"{kind} of {model}: {image.get('n', 0)} images from {boot.get('n_groups', 0)} "
        f"{units} of {result.get('data_description', '')}"
    )
    intervals = image.get("intervals", {})
    positive = result.get("positive_class", "positive class")
    for key, name in FIGURES.items():
        if key in intervals:
            label = f"F1 ({positive})" if key == "f1" else name
            lines.append(f"  {label:<28} {interval_text(intervals[key])}")
    by_hours = image.get("accuracy_by_hours") or {}
    if by_hours:
        lines.append("  accuracy per hours since induction; balanced accuracy from that hour on:")
        for h, v in sorted(by_hours.items(), key=lambda kv: float(kv[0])):
            since = (
                f"; from {h} h on {from_hours_text(v)}" if v.get("balanced_accuracy_from") else ""
            )
            lines.append(
                f"    {h:>6} h  {hours_interval_text(v)}  ({v.get('n')} images, "
                f"{v.get('n_groups')} {units}){since}"
            )
    if boot:
        lines.append(
            f"  95 % intervals: percentile bootstrap over {boot.get('n_groups')} {units} "
            f"(images resampled with their {unit}), {boot.get('resamples')} resamples, "
            f"seed {boot.get('seed')}"
        )
    lines += [f"warning: {w}" for w in result.get("warnings", [])]
    return lines


def run(args: argparse.Namespace) -> int:
    from trainer.evaluate import evaluate_model
    from trainer.report import write_report

    result = evaluate_model(
        args.model,
        args.data,
        allow_seen=args.allow_seen,
        group_by=args.group_by,
        max_unreadable_fraction=args.max_unreadable_fraction,
    )
    json_path, md_path = write_report(result, args.out, title=f"Evaluation of {args.model.name}")
    print(
        "\n".join([*summary_lines(result, args.model), f"report: {md_path}  metrics: {json_path}"])
    )
    return 0
