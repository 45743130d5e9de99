"""Evaluation reports: ``metrics.json`` plus ``report.md`` with PNG plots (matplotlib, Agg).

Plots: confusion matrix, ROC curve, reliability diagram and the Waisman curve (image-level
accuracy per hours since induction: how early can the model tell?).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and callable(obj.item):
        return _jsonable(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def plot_confusion(cm: list[list[int]], class_names: list[str], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(cm, cmap="Blues")
    for i, row in enumerate(cm):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center")
    ax.set_xticks(range(len(class_names)), class_names, rotation=20)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_roc(roc: dict[str, list[float]], auc: float | None, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.plot(roc.get("fpr", []), roc.get("tpr", []), label=f"AUC {_fmt(auc)}")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_reliability(bins: list[dict[str, float]], ece: float, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.plot(
        [b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label=f"ECE {ece:.3f}"
    )
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_hours(by_hours: dict[str, Any], path: Path, label: str = "accuracy") -> Path:
    """Accuracy per hours since induction; values are {'accuracy': x} or {'mean':, 'sd':}."""
    plt = _pyplot()
    hours = sorted(by_hours, key=float)
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    if hours and "mean" in by_hours[hours[0]]:
        ax.errorbar(
            [float(h) for h in hours],
            [by_hours[h]["mean"] for h in hours],
            yerr=[by_hours[h]["sd"] for h in hours],
            marker="o",
            capsize=3,
        )
    else:
        ax.plot([float(h) for h in hours], [by_hours[h]["accuracy"] for h in hours], "o-")
    ax.set_xlabel("hours since induction")
    ax.set_ylabel(label)
    ax.set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _metrics_table(levels: dict[str, dict[str, Any]]) -> list[str]:
    keys = ["n", "accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "ece"]
    lines = ["| level | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for level, m in levels.items():
        lines.append(f"| {level} | " + " | ".join(_fmt(m.get(k)) for k in keys) + " |")
    return lines


def write_report(
    result: dict[str, Any], out_dir: Path, *, title: str = "Evaluation"
) -> tuple[Path, Path]:
    """``metrics.json`` and ``report.md`` (+ PNGs) for one evaluation result
    (as from :func:`trainer.evaluate.evaluate_tiles`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "metrics.json"
    json_path.write_text(json.dumps(_jsonable(result), indent=2), encoding="utf-8")
    image, tile = result.get("image", {}), result.get("tile", {})
    class_names = result.get("class_names") or list(image.get("per_class", {}))
    lines = [f"# {title}", ""]
    if result.get("model"):
        lines += [f"Model: `{result['model']}`", ""]
    lines += [
        "Image level = mean of the image's tile probabilities (what the monitor reports).",
        "",
    ]
    lines += [*_metrics_table({"image": image, "tile": tile}), ""]
    if image.get("ece_uncalibrated") is not None:
        lines += [
            f"Temperature scaling: image-level ECE {_fmt(image['ece_uncalibrated'])} before, "
            f"{_fmt(image.get('ece'))} after.",
            "",
        ]
    lines += ["## Per class (image level)", "", "| class | precision | recall | F1 | n |"]
    lines.append("|---|---|---|---|---|")
    for name, m in image.get("per_class", {}).items():
        lines.append(
            f"| {name} | {_fmt(m['precision'])} | {_fmt(m['recall'])} | {_fmt(m['f1'])} | "
            f"{m['support']} |"
        )
    lines.append("")
    if image.get("confusion_matrix"):
        plot_confusion(image["confusion_matrix"], class_names, out_dir / "confusion.png")
        lines += ["## Confusion matrix (image level)", "", "![confusion](confusion.png)", ""]
    if image.get("roc", {}).get("fpr"):
        plot_roc(image["roc"], image.get("roc_auc"), out_dir / "roc.png")
        lines += ["## ROC (image level)", "", "![roc](roc.png)", ""]
    if image.get("reliability"):
        plot_reliability(image["reliability"], image["ece"], out_dir / "reliability.png")
        lines += ["## Calibration (image level)", "", "![reliability](reliability.png)", ""]
    by_hours = image.get("accuracy_by_hours") or {}
    if by_hours:
        plot_hours(by_hours, out_dir / "accuracy_by_hours.png")
        lines += ["## Accuracy per hours since induction (image level)", ""]
        lines += ["| hours | accuracy | n |", "|---|---|---|"]
        lines += [
            f"| {h} | {_fmt(v['accuracy'])} | {v['n']} |"
            for h, v in sorted(by_hours.items(), key=lambda kv: float(kv[0]))
        ]
        lines += ["", "![accuracy by hours](accuracy_by_hours.png)", ""]
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(lines), encoding="utf-8")
    return json_path, md_path


def write_cv_report(
    summary: dict[str, Any], out_dir: Path, *, title: str = "Cross-validation"
) -> tuple[Path, Path]:
    """Per-fold and mean ± sd report of :func:`trainer.train.run_cross_validation`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "metrics.json"
    json_path.write_text(json.dumps(_jsonable(summary), indent=2), encoding="utf-8")
    keys = ["accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "ece"]
    lines = [f"# {title}", "", f"{summary.get('k')} folds grouped by well/plate/experiment.", ""]
    lines += ["## Per fold (image level)", "", "| fold | " + " | ".join(keys) + " |"]
    lines.append("|---" * (len(keys) + 1) + "|")
    for f in summary.get("folds", []):
        m = f.get("test", {}).get("image", {})
        lines.append(f"| {f['split']} | " + " | ".join(_fmt(m.get(k)) for k in keys) + " |")
    for level in ("image", "tile"):
        agg = summary.get(level, {})
        lines += [
            "",
            f"## Mean ± sd ({level} level)",
            "",
            "| metric | mean | sd |",
            "|---|---|---|",
        ]
        for k in keys:
            if k in agg:
                lines.append(f"| {k} | {agg[k]['mean']:.3f} | {agg[k]['sd']:.3f} |")
    agg = summary.get("image", {})
    by_hours = {
        k[len("accuracy_by_hours.") : -len(".accuracy")]: v
        for k, v in agg.items()
        if k.startswith("accuracy_by_hours.") and k.endswith(".accuracy")
    }
    if by_hours:
        plot_hours(by_hours, out_dir / "accuracy_by_hours.png", "accuracy (mean ± sd)")
        lines += ["", "## Accuracy per hours since induction (mean ± sd over folds)", ""]
        lines += ["| hours | mean | sd |", "|---|---|---|"]
        lines += [
            f"| {h} | {v['mean']:.3f} | {v['sd']:.3f} |"
            for h, v in sorted(by_hours.items(), key=lambda kv: float(kv[0]))
        ]
        lines += ["", "![accuracy by hours](accuracy_by_hours.png)"]
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return json_path, md_path
