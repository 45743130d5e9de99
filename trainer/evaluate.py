"""Metrics of a classifier at tile and image level, for a checkpoint or an exported ONNX file.

Image level is what the monitor reports: the mean of an image's tile probabilities
(:func:`stemwatch.core.aggregate.image_probabilities`). Metrics:
accuracy, balanced accuracy, per-class precision/recall/F1, ROC-AUC of the positive class,
confusion matrix, expected calibration error and accuracy per hours since induction (how early
can the model tell?). Every figure comes with a 95 % interval from a bootstrap over the
split's grouping unit (:mod:`trainer.metric_intervals`: wells by default; images resampled
with their well), and a test set with fewer than 10 groups per class gets a warning that names
the interval's width. :func:`summarise_folds` gives mean ± sd over cross-validation folds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from stemwatch.core.aggregate import image_probabilities
from stemwatch.core.imaging import NormalisationRecipe, TilingSpec
from stemwatch.core.intervals import DEFAULT_RESAMPLES, Interval
from stemwatch.core.modelfile import open_model
from trainer.calibrate import expected_calibration_error, reliability_bins
from trainer.data import DataError, Sample, TileCache, TileSet
from trainer.metric_intervals import (
    figure_intervals,
    from_hours_intervals,
    interval_dict,
    small_test_set_warning,
)
from trainer.predict import load_model_from_checkpoint, predict_logits

log = logging.getLogger(__name__)


def classification_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    positive_index: int,
    hours: Sequence[float | None] | None = None,
) -> dict[str, Any]:
    """All metrics of one prediction set (rows of ``probs`` sum to 1)."""
    from sklearn.metrics import (
        balanced_accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y = np.asarray(labels)
    p = np.asarray(probs, dtype=np.float64)
    n_classes = len(class_names)
    if len(y) == 0:
        return {"n": 0}
    pred = p.argmax(axis=1)
    prec, rec, f1, support = precision_recall_fscore_support(
        y, pred, labels=list(range(n_classes)), zero_division=0
    )
    out: dict[str, Any] = {
        "n": len(y),
        "accuracy": float((pred == y).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred))
        if len(np.unique(y)) > 1
        else float((pred == y).mean()),
        "per_class": {
            name: {
                "precision": float(prec[i]),
                "recall": float(rec[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "macro_f1": float(np.mean(f1)),
        "confusion_matrix": confusion_matrix(y, pred, labels=list(range(n_classes))).tolist(),
        "ece": expected_calibration_error(p, y),
        "reliability": reliability_bins(p, y),
    }
    if len(np.unique(y)) > 1:
        if n_classes == 2:
            out["roc_auc"] = float(roc_auc_score(y == positive_index, p[:, positive_index]))
        else:
            out["roc_auc"] = float(roc_auc_score(y, p, multi_class="ovr"))
    else:
        out["roc_auc"] = None
    if hours is not None:
        out["accuracy_by_hours"] = accuracy_by_hours(pred, y, hours)
    return out


def accuracy_by_hours(
    pred: np.ndarray, labels: np.ndarray, hours: Sequence[float | None]
) -> dict[str, dict[str, float]]:
    """Accuracy per hours-since-induction value (keys are hours as text, sorted numerically)."""
    out: dict[str, dict[str, float]] = {}
    known = [(h, i) for i, h in enumerate(hours) if h is not None and not math.isnan(h)]
    for h in sorted({h for h, _ in known}):
        idx = np.array([i for hh, i in known if hh == h])
        out[f"{h:g}"] = {
            "accuracy": float((pred[idx] == labels[idx]).mean()),
            "n": len(idx),
        }
    return out


def roc_points(
    probs: np.ndarray, labels: np.ndarray, positive_index: int
) -> dict[str, list[float]]:
    """False- and true-positive rates of the positive class (for the ROC plot)."""
    from sklearn.metrics import roc_curve

    y = np.asarray(labels) == positive_index
    if y.all() or not y.any():
        return {"fpr": [], "tpr": []}
    fpr, tpr, _ = roc_curve(y, np.asarray(probs)[:, positive_index])
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_NOT_A_FIGURE = frozenset(
    {"n", "count", "support", "intervals", "bootstrap", "low", "high", "n_groups", "level", "roc"}
)


def summarise_folds(folds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sd (ddof=1 when >1 fold) of every scalar metric present in all folds,
    flattening nested keys with dots (``per_class.differentiated.f1``); counts and interval
    bounds are left out."""

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
        out: dict[str, float] = {}
        for k, v in d.items():
            key = f"{prefix}{k}"
            if k in _NOT_A_FIGURE:
                continue
            if isinstance(v, dict):
                out.update(flat(v, key + "."))
            elif _is_number(v):
                out[key] = float(v)
        return out

    flats = [flat(f) for f in folds]
    if not flats:
        return {}
    keys = [k for k in flats[0] if all(k in f for f in flats)]
    summary = {}
    for k in keys:
        vals = np.array([f[k] for f in flats])
        sd = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        summary[k] = {"mean": float(vals.mean()), "sd": sd, "values": vals.tolist()}
    return summary


class Predictor(Protocol):
    """A model that turns tiles into calibrated class probabilities."""

    class_names: list[str]
    positive_class: str
    tiling: TilingSpec
    normalisation: NormalisationRecipe
    source: str

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N,1,S,S) float32 tiles -> (N,C) probabilities."""
        ...


@dataclass
class OnnxPredictor:
    """An exported model run through onnxruntime, preprocessing taken from its metadata."""

    path: Path
    batch_size: int = 64

    def __post_init__(self) -> None:
        opened = open_model(self.path)
        self.session = opened.session
        self.meta = opened.metadata
        self.class_names = list(self.meta.class_names)
        self.positive_class = self.meta.positive_class
        self.tiling = self.meta.tiling
        self.normalisation = self.meta.normalisation
        self.source = str(self.path)

    def predict(self, x: np.ndarray) -> np.ndarray:
        outs = []
        for i in range(0, len(x), self.batch_size):
            batch = np.ascontiguousarray(x[i : i + self.batch_size], dtype=np.float32)
            (probs,) = self.session.run([self.meta.output_name], {self.meta.input_name: batch})
            outs.append(np.asarray(probs, dtype=np.float64))
        if not outs:
            return np.zeros((0, len(self.class_names)))
        return np.concatenate(outs)


class CheckpointPredictor:
    """A training checkpoint run in torch on CPU, with its calibration temperature."""

    def __init__(
        self, path: Path, *, expected_architecture: str | None = None, batch_size: int = 64
    ) -> None:
        self.model, info = load_model_from_checkpoint(
            path, expected_architecture=expected_architecture
        )
        self.class_names = list(info["class_names"])
        self.positive_class = str(info["positive_class"])
        self.tiling = TilingSpec.model_validate(info["tiling"])
        self.normalisation = NormalisationRecipe.model_validate(info["normalisation"])
        self.temperature = float(info["temperature"])
        self.checkpoint = info["checkpoint"]
        self.batch_size = batch_size
        self.source = str(path)

    def predict(self, x: np.ndarray) -> np.ndarray:
        from trainer.calibrate import softmax

        logits = predict_logits(self.model, x, batch_size=self.batch_size)
        return softmax(logits, self.temperature)


def load_predictor(path: Path) -> Predictor:
    """A checkpoint (``.pt``/``.pth``) or an exported ``.onnx`` model."""
    if path.suffix.lower() == ".onnx":
        return OnnxPredictor(path)
    return CheckpointPredictor(path)


def metrics_with_intervals(
    probs: np.ndarray,
    labels: np.ndarray,
    groups: Sequence[str],
    class_names: Sequence[str],
    positive_index: int,
    *,
    hours: Sequence[float | None] | None = None,
    group_by: str = "well",
    seed: int = 0,
) -> dict[str, Any]:
    """:func:`classification_metrics` plus ``intervals`` (95 % interval of every figure over
    ``groups``), the interval of each ``accuracy_by_hours`` entry and how it was computed."""
    out = classification_metrics(probs, labels, class_names, positive_index, hours)
    if not len(labels):
        return out
    figures, hourly = figure_intervals(probs, labels, groups, positive_index, hours, seed=seed)
    out["intervals"] = {name: interval_dict(iv) for name, iv in figures.items()}
    from_hours = from_hours_intervals(probs, labels, groups, hours, seed=seed) if hours else {}
    for key, entry in (out.get("accuracy_by_hours") or {}).items():
        iv = hourly.get(key)
        entry.update(low=iv.low if iv else None, high=iv.high if iv else None)
        entry["n_groups"] = iv.n_groups if iv else 0
        if key in from_hours:
            entry["balanced_accuracy_from"] = interval_dict(from_hours[key])
    out["bootstrap"] = {
        "unit": group_by,
        "n_groups": len(set(groups)),
        "method": "percentile bootstrap over groups (images resampled with their group)",
        "resamples": DEFAULT_RESAMPLES,
        "level": 0.95,
        "seed": seed,
    }
    return out


def evaluate_tiles(
    probs: np.ndarray,
    tiles: TileSet,
    class_names: Sequence[str],
    positive_index: int,
    *,
    group_by: str = "well",
    seed: int = 0,
) -> dict[str, Any]:
    """Tile- and image-level metrics with 95 % intervals over ``group_by`` groups, per-image
    predictions and warnings, for ready-made probabilities."""
    samples = tiles.samples
    img_probs = image_probabilities(probs, tiles.image, len(samples))
    img_labels = np.array([s.label for s in samples])
    img_groups = [s.group(group_by) for s in samples]
    has_tiles = ~np.isnan(img_probs).any(axis=1)
    ok = np.flatnonzero(has_tiles)
    image_metrics = metrics_with_intervals(
        img_probs[ok],
        img_labels[ok],
        [img_groups[i] for i in ok],
        class_names,
        positive_index,
        hours=[samples[i].hours for i in ok],
        group_by=group_by,
        seed=seed,
    )
    tile_metrics = metrics_with_intervals(
        probs,
        tiles.y,
        [img_groups[i] for i in tiles.image.tolist()],
        class_names,
        positive_index,
        hours=[samples[i].hours for i in tiles.image.tolist()],
        group_by=group_by,
        seed=seed,
    )
    image_metrics["roc"] = roc_points(img_probs[ok], img_labels[ok], positive_index)
    predictions = [
        {
            "path": str(s.path),
            "label": class_names[s.label],
            "predicted": class_names[int(np.argmax(img_probs[i]))] if has_tiles[i] else None,
            "probability": float(img_probs[i, positive_index]) if has_tiles[i] else None,
            "probabilities": [float(v) for v in img_probs[i]] if has_tiles[i] else None,
            "group": img_groups[i],
            "plate": s.plate,
            "well": s.well,
            "experiment": s.experiment,
            "hours_since_induction": s.hours,
        }
        for i, s in enumerate(samples)
    ]
    return {
        "image": image_metrics,
        "tile": tile_metrics,
        "predictions": predictions,
        "warnings": test_set_warnings(image_metrics, img_labels[ok], img_groups, ok, class_names),
    }


def test_set_warnings(
    image_metrics: dict[str, Any],
    labels: np.ndarray,
    groups: Sequence[str],
    kept: np.ndarray,
    class_names: Sequence[str],
) -> list[str]:
    """The small-test-set warning (if any) for an image-level result."""
    ba = image_metrics.get("intervals", {}).get("balanced_accuracy")
    iv = Interval(ba["value"], ba["low"], ba["high"], ba["n_groups"]) if ba else None
    unit = image_metrics.get("bootstrap", {}).get("unit", "well")
    msg = small_test_set_warning(labels.tolist(), [groups[i] for i in kept], class_names, unit, iv)
    if msg:
        log.warning("%s", msg)
    return [msg] if msg else []


def heldout_summary(result: dict[str, Any], *, split: str = "") -> dict[str, Any]:
    """The held-out figures of an evaluation in brief (what ``best.pt`` and the exported
    model carry): each figure with its 95 % interval, accuracy per hours, the grouping unit,
    counts and warnings."""
    image = result.get("image", {})
    boot = image.get("bootstrap", {})
    return {
        "split": split,
        "level": "image",
        "group_by": boot.get("unit"),
        "n_images": image.get("n", 0),
        "n_groups": boot.get("n_groups", 0),
        "figures": image.get("intervals", {}),
        "accuracy_by_hours": image.get("accuracy_by_hours", {}),
        "interval_method": boot.get("method"),
        "warnings": list(result.get("warnings", [])),
    }


def pooled_predictions(
    predictions: Sequence[dict[str, Any]],
    class_names: Sequence[str],
    positive_index: int,
    *,
    group_by: str,
    seed: int = 0,
) -> dict[str, Any]:
    """Image-level metrics with intervals over the predictions of several folds together
    (each image is in one fold's test set)."""
    rows = [p for p in predictions if p.get("probabilities") is not None]
    probs = np.array([p["probabilities"] for p in rows], dtype=np.float64).reshape(
        len(rows), len(class_names)
    )
    labels = np.array([list(class_names).index(p["label"]) for p in rows], dtype=int)
    groups = [str(p["group"]) for p in rows]
    out = metrics_with_intervals(
        probs,
        labels,
        groups,
        class_names,
        positive_index,
        hours=[p.get("hours_since_induction") for p in rows],
        group_by=group_by,
        seed=seed,
    )
    warnings = test_set_warnings(out, labels, groups, np.arange(len(rows)), class_names)
    return {"image": out, "warnings": warnings}


def evaluate_predictor(
    predictor: Predictor,
    samples: Sequence[Sample],
    *,
    page: int = 0,
    max_unreadable_fraction: float = 0.05,
    group_by: str = "well",
    cache: TileCache | None = None,
) -> dict[str, Any]:
    """Run ``predictor`` on ``samples`` with the preprocessing it was trained with; intervals
    over ``group_by`` groups. ``cache`` may hold the images already read (it must prepare
    them with the predictor's tiling and normalisation)."""
    if cache is None:
        cache = TileCache(predictor.tiling, predictor.normalisation, page=page)
    readable = cache.warm(samples, max_unreadable_fraction=max_unreadable_fraction)
    tiles = cache.tileset(readable)
    probs = predictor.predict(tiles.x)
    positive_index = predictor.class_names.index(predictor.positive_class)
    result = evaluate_tiles(probs, tiles, predictor.class_names, positive_index, group_by=group_by)
    result["model"] = predictor.source
    result["class_names"] = list(predictor.class_names)
    result["positive_class"] = predictor.positive_class
    result["n_unreadable"] = len(samples) - len(readable)
    return result


def evaluate_model(
    model: Path,
    data: Path | None = None,
    *,
    allow_seen: bool = False,
    group_by: str | None = None,
    max_unreadable_fraction: float = 0.05,
) -> dict[str, Any]:
    """``stemwatch evaluate``: a checkpoint on its run's held-out split (``data`` None), or a
    model on ``data`` after checking it holds nothing the model was trained or validated on
    (:mod:`trainer.heldout`): seen images raise :class:`~trainer.heldout.LeakError` unless
    ``allow_seen``, and then the result's ``notice`` says so. Intervals are over the split's
    grouping unit unless ``group_by`` is given."""
    from trainer.data import load_samples
    from trainer.heldout import (
        LeakError,
        SeenRecord,
        check_unchanged,
        find_seen,
        heldout_samples,
        seen_from_split,
        seen_from_training,
    )

    predictor = load_predictor(model)
    record: SeenRecord | None
    split: dict[str, Any] | None = None
    if isinstance(predictor, CheckpointPredictor):
        split = predictor.checkpoint.split
        record = seen_from_split(split, f"checkpoint {model}") or seen_from_training(
            predictor.checkpoint.training, f"checkpoint {model}"
        )
    else:
        meta_training = predictor.meta.training if isinstance(predictor, OnnxPredictor) else {}
        record = seen_from_training(meta_training, f"model {model}")
    unit = group_by or (record.group_by if record else "well")
    cache = TileCache(predictor.tiling, predictor.normalisation)
    warnings: list[str] = []
    notice = None
    if data is None:
        if not isinstance(predictor, CheckpointPredictor):
            raise DataError(
                f"{model}: an exported model does not carry its split's images; give DATA "
                "(e.g. the run's test_manifest.csv), or evaluate the run's best.pt"
            )
        samples, recorded = heldout_samples(split, predictor.class_names, str(model))
        cache.warm(samples, max_unreadable_fraction=max_unreadable_fraction)
        check_unchanged(samples, recorded, cache.content_hash)
        description = (
            f"the held-out test split of the run ({split.get('name') if split else ''}, data "
            f"set {str(split.get('data_hash') if split else '')[:19]})"
        )
    else:
        is_csv = data.suffix.lower() == ".csv"
        samples = load_samples(
            manifest=data if is_csv else None,
            folder=None if is_csv else data,
            classes=predictor.class_names,
            min_classes=1,
        )
        description = str(data)
        if record is None:
            warnings.append(
                f"{model} carries no record of its training split: whether these images were "
                "in its training data cannot be checked"
            )
        else:
            seen = find_seen(samples, record)  # paths and groups: before reading any image
            if seen.n_seen and not allow_seen:
                raise LeakError(seen.refusal())
            cache.warm(samples, max_unreadable_fraction=max_unreadable_fraction)
            seen = find_seen(samples, record, cache.content_hash)
            if seen.n_seen and not allow_seen:
                raise LeakError(seen.refusal())
            if seen.n_seen:
                notice = seen.notice()
                log.warning("%s", notice)
            how = (
                f"content hash, path and {record.group_by}"
                if record.has_images
                else f"{record.group_by} (an exported model lists no images)"
            )
            description += (
                f" ({seen.describe()})"
                if seen.n_seen
                else f" (none of them in training or validation; checked by {how})"
            )
    result = evaluate_predictor(
        predictor,
        samples,
        max_unreadable_fraction=max_unreadable_fraction,
        group_by=unit,
        cache=cache,
    )
    out: dict[str, Any] = {"notice": notice} if notice else {}
    out.update(result)
    out["data_description"] = description
    out["warnings"] = [*warnings, *result.get("warnings", [])]
    out["held_out"] = notice is None
    return out
