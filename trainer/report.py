"""Evaluation reports: ``metrics.json`` plus ``report.md`` with PNG plots (matplotlib, Agg).

Plots: confusion matrix, ROC curve, reliability diagram and the Waisman curve (image-level
accuracy per hours since induction: how early can the model tell?).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from trainer.metric_intervals import (
    FIGURES,
    UNIT_PLURAL,
    from_hours_text,
    hours_interval_text,
    interval_text,
)


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
    """Accuracy per hours since induction with error bars: values are
    {'accuracy': x, 'low': l, 'high': h} (95 % interval) or {'mean': m, 'sd': s}."""
    plt = _pyplot()
    hours = sorted(by_hours, key=float)
    x = [float(h) for h in hours]
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    if hours and "mean" in by_hours[hours[0]]:
        y = [by_hours[h]["mean"] for h in hours]
        err: Any = [by_hours[h]["sd"] for h in hours]
    else:
        y = [by_hours[h]["accuracy"] for h in hours]
        lows = [by_hours[h].get("low") for h in hours]
        highs = [by_hours[h].get("high") for h in hours]
        err = [
            [v - lo if lo is not None else 0 for v, lo in zip(y, lows, strict=True)],
            [hi - v if hi is not None else 0 for v, hi in zip(y, highs, strict=True)],
        ]
    ax.errorbar(x, y, yerr=err, marker="o", capsize=3)
    ax.set_xlabel("hours since induction")
    ax.set_ylabel(label)
    ax.set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def with_interval(metrics: dict[str, Any], name: str) -> str:
    """``0.912 [0.850, 0.960]`` from a metrics dict with ``intervals`` (the bare figure, or
    ``–``, when it has none)."""
    iv = metrics.get("intervals", {}).get(name)
    if iv is None:
        return _fmt(metrics.get(name)) if name != "f1" else "–"
    return interval_text(iv)


def dump_json(obj: dict[str, Any]) -> str:
    """Indented JSON; a ``notice`` key goes first, on the first line, so that whoever opens
    the file reads it before any figure."""
    data = _jsonable(obj)
    if "notice" not in data:
        return json.dumps(data, indent=2)
    data = {"notice": data["notice"], **{k: v for k, v in data.items() if k != "notice"}}
    text = json.dumps(data, indent=2)
    return "{" + text[1:].lstrip("\n ")  # '{"notice": "...",' on line one; still valid JSON


def interval_note(metrics: dict[str, Any]) -> str:
    boot = metrics.get("bootstrap") or {}
    if not boot:
        return ""
    unit = boot.get("unit", "group")
    units = UNIT_PLURAL.get(unit, f"{unit} groups")
    return (
        f"[95 % intervals: percentile bootstrap over the {boot.get('n_groups')} {units} of the "
        f"test set (images resampled with their {unit}), {boot.get('resamples')} resamples, "
        f"seed {boot.get('seed')}.]"
    )


def _metrics_table(levels: dict[str, dict[str, Any]]) -> list[str]:
    keys = list(FIGURES)
    lines = [
        "| level | n | " + " | ".join(FIGURES[k] for k in keys) + " |",
        "|---" * (len(keys) + 2) + "|",
    ]
    for level, m in levels.items():
        cells = " | ".join(with_interval(m, k) for k in keys)
        lines.append(f"| {level} | {m.get('n', 0)} | {cells} |")
    return lines


def _hours_table(by_hours: dict[str, Any], unit: str) -> list[str]:
    units = UNIT_PLURAL.get(unit, f"{unit} groups")
    lines = [
        f"| hours | accuracy [95 % CI] | images | {units} | balanced accuracy from this hour "
        "on [95 % CI] |",
        "|---|---|---|---|---|",
    ]
    for h, v in sorted(by_hours.items(), key=lambda kv: float(kv[0])):
        cell, since = hours_interval_text(v), from_hours_text(v)
        lines.append(f"| {h} | {cell} | {v.get('n', '')} | {v.get('n_groups', '')} | {since} |")
    return lines


def write_report(
    result: dict[str, Any], out_dir: Path, *, title: str = "Evaluation"
) -> tuple[Path, Path]:
    """``metrics.json`` and ``report.md`` (+ PNGs) for one evaluation result
    (as from :func:`trainer.evaluate.evaluate_tiles`). A ``notice`` in the result (images the
    model was trained on) is the first line of both files; ``warnings`` follow the title."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "metrics.json"
    json_path.write_text(dump_json(result), encoding="utf-8")
    image, tile = result.get("image", {}), result.get("tile", {})
    class_names = result.get("class_names") or list(image.get("per_class", {}))
    lines = [f"**{result['notice']}**", ""] if result.get("notice") else []
    lines += [f"# {title}", ""]
    for warning in result.get("warnings", []):
        lines += [f"> **Warning:** {warning}", ""]
    if result.get("model"):
        lines += [f"Model: `{result['model']}`", ""]
    if result.get("data_description"):
        lines += [f"Data: {result['data_description']}", ""]
    lines += [
        "Image level = mean of the image's tile probabilities (what the monitor reports).",
        "",
    ]
    lines += [*_metrics_table({"image": image, "tile": tile}), ""]
    if image.get("bootstrap"):
        lines += [interval_note(image), ""]
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
        unit = (image.get("bootstrap") or {}).get("unit", "group")
        lines += ["## Accuracy per hours since induction (image level)", ""]
        lines += _hours_table(by_hours, unit)
        lines += ["", "![accuracy by hours](accuracy_by_hours.png)", ""]
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(lines), encoding="utf-8")
    return json_path, md_path


def write_cv_report(
    summary: dict[str, Any], out_dir: Path, *, title: str = "Cross-validation"
) -> tuple[Path, Path]:
    """Report of :func:`trainer.train.run_cross_validation`: every fold with its intervals,
    mean ± sd over folds, and the pooled figures (all folds' test images together) with
    95 % intervals over the grouping unit."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "metrics.json"
    json_path.write_text(dump_json(summary), encoding="utf-8")
    keys = list(FIGURES)
    unit = summary.get("group_by", "group")
    scheme = summary.get("scheme", f"{summary.get('k')}-fold")
    lines = [f"# {title}", ""]
    pooled = summary.get("pooled", {})
    for warning in pooled.get("warnings", []):
        lines += [f"> **Warning (pooled):** {warning}", ""]
    lines += [
        f"{summary.get('k')} folds ({scheme}), grouped by {unit}; each image is in exactly one "
        "fold's test set.",
        "",
        "## Per fold (image level, 95 % intervals over the fold's test groups)",
        "",
        "| fold | " + " | ".join(FIGURES[k] for k in keys) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    for f in summary.get("folds", []):
        m = f.get("test", {}).get("image", {})
        lines.append(f"| {f['split']} | " + " | ".join(with_interval(m, k) for k in keys) + " |")
    for level in ("image", "tile"):
        agg = summary.get(level, {})
        lines += [
            "",
            f"## Mean ± sd over folds ({level} level)",
            "",
            "| metric | mean | sd |",
            "|---|---|---|",
        ]
        for k in keys:
            if k in agg:
                lines.append(f"| {FIGURES[k]} | {agg[k]['mean']:.3f} | {agg[k]['sd']:.3f} |")
    pooled_image = pooled.get("image", {})
    if pooled_image:
        lines += [
            "",
            "## Pooled over folds (image level, 95 % intervals)",
            "",
            *_metrics_table({"image": pooled_image}),
            "",
            interval_note(pooled_image),
        ]
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
    pooled_hours = pooled_image.get("accuracy_by_hours") or {}
    if pooled_hours:
        lines += ["", "## Accuracy per hours since induction (pooled, 95 % intervals)", ""]
        lines += _hours_table(pooled_hours, unit)
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return json_path, md_path
