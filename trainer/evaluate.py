"""Metrics of a classifier at tile and image level, for a checkpoint or an exported ONNX file.

Image level is what the monitor reports: the mean of an image's tile probabilities
(:func:`stemwatch.core.aggregate.image_probabilities`). Metrics:
accuracy, balanced accuracy, per-class precision/recall/F1, ROC-AUC of the positive class,
confusion matrix, expected calibration error and accuracy per hours since induction (how early
can the model tell?). :func:`summarise_folds` gives mean ± sd over cross-validation folds.
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
from stemwatch.core.modelfile import open_model
from trainer.calibrate import expected_calibration_error, reliability_bins
from trainer.data import Sample, TileCache, TileSet
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


def summarise_folds(folds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sd (ddof=1 when >1 fold) of every scalar metric present in all folds,
    flattening nested keys with dots (``per_class.differentiated.f1``)."""

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
        out: dict[str, float] = {}
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                out.update(flat(v, key + "."))
            elif _is_number(v) and k not in ("n", "count", "support"):
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


def evaluate_tiles(
    probs: np.ndarray,
    tiles: TileSet,
    class_names: Sequence[str],
    positive_index: int,
) -> dict[str, Any]:
    """Tile- and image-level metrics plus per-image predictions for ready-made probabilities."""
    samples = tiles.samples
    img_probs = image_probabilities(probs, tiles.image, len(samples))
    img_labels = np.array([s.label for s in samples])
    has_tiles = ~np.isnan(img_probs).any(axis=1)
    hours_img = [s.hours for s in samples]
    image_metrics = classification_metrics(
        img_probs[has_tiles],
        img_labels[has_tiles],
        class_names,
        positive_index,
        [h for h, ok in zip(hours_img, has_tiles, strict=True) if ok],
    )
    tile_hours = [samples[i].hours for i in tiles.image.tolist()]
    tile_metrics = classification_metrics(probs, tiles.y, class_names, positive_index, tile_hours)
    image_metrics["roc"] = roc_points(img_probs[has_tiles], img_labels[has_tiles], positive_index)
    predictions = [
        {
            "path": str(s.path),
            "label": class_names[s.label],
            "predicted": class_names[int(np.argmax(img_probs[i]))] if has_tiles[i] else None,
            "probability": float(img_probs[i, positive_index]) if has_tiles[i] else None,
            "plate": s.plate,
            "well": s.well,
            "experiment": s.experiment,
            "hours_since_induction": s.hours,
        }
        for i, s in enumerate(samples)
    ]
    return {"image": image_metrics, "tile": tile_metrics, "predictions": predictions}


def evaluate_predictor(
    predictor: Predictor,
    samples: Sequence[Sample],
    *,
    page: int = 0,
    max_unreadable_fraction: float = 0.05,
) -> dict[str, Any]:
    """Run ``predictor`` on ``samples`` with the preprocessing it was trained with."""
    cache = TileCache(predictor.tiling, predictor.normalisation, page=page)
    readable = cache.warm(samples, max_unreadable_fraction=max_unreadable_fraction)
    tiles = cache.tileset(readable)
    probs = predictor.predict(tiles.x)
    positive_index = predictor.class_names.index(predictor.positive_class)
    result = evaluate_tiles(probs, tiles, predictor.class_names, positive_index)
    result["model"] = predictor.source
    result["class_names"] = list(predictor.class_names)
    result["positive_class"] = predictor.positive_class
    result["n_unreadable"] = len(samples) - len(readable)
    return result
