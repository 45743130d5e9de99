"""A decision threshold on the positive class's probability, chosen on validation data.

``argmax`` of two calibrated probabilities decides at 0.5. With a rare positive class (about
17 % stained blocks in Kusumoto-style data) the F1 of that class is often higher at another
threshold. :func:`f1_threshold` picks the threshold that maximises F1 on the **validation**
split; :func:`figures_at_threshold` scores held-out images at that threshold, each figure with
its 95 % interval over groups (the same bootstrap as every other figure). A threshold picked
on the test images themselves would flatter the test figures; nothing here does that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stemwatch.core.intervals import DEFAULT_RESAMPLES, bootstrap_items
from trainer.metric_intervals import (
    accuracy_statistic,
    balanced_accuracy_statistic,
    f1_statistic,
    interval_dict,
)

THRESHOLD_FIGURES = ("accuracy", "balanced_accuracy", "f1", "precision", "recall")
"""The figures reported at a chosen threshold (F1, precision, recall of the positive class)."""


def _counts(pred: np.ndarray, positive: np.ndarray) -> tuple[int, int, int]:
    tp = int((pred & positive).sum())
    return tp, int((pred & ~positive).sum()), int((~pred & positive).sum())


def f1_threshold(
    scores: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray
) -> float:
    """The threshold ``t`` (predict positive when ``score >= t``) that maximises the positive
    class's F1 on these items: the midpoint between two neighbouring distinct scores (or
    just below the lowest). Ties go to the threshold nearest 0.5 (argmax's choice). Without
    a positive or a negative item F1 cannot choose: 0.5."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(positive, dtype=bool)
    if len(s) != len(y):
        raise ValueError(f"{len(s)} scores but {len(y)} labels")
    if not y.any() or y.all():
        return 0.5
    uniq = np.unique(s)
    candidates = np.r_[uniq[0] - 1e-6, (uniq[1:] + uniq[:-1]) / 2]
    best_t, best_f1 = 0.5, -1.0
    for t in candidates:
        tp, fp, fn = _counts(s >= t, y)
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        better = f1 > best_f1 + 1e-12
        tie = abs(f1 - best_f1) <= 1e-12 and abs(t - 0.5) < abs(best_t - 0.5)
        if better or tie:
            best_t, best_f1 = float(t), f1
    return best_t


def predict_at(probs: np.ndarray, positive_index: int, threshold: float | np.ndarray) -> np.ndarray:
    """Class index per row of two-class ``probs``: positive when its probability reaches
    ``threshold`` (one value, or one per row: each fold's own, when folds are pooled)."""
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"a decision threshold needs two classes, got probabilities {p.shape}")
    other = 1 - positive_index
    return np.where(p[:, positive_index] >= threshold, positive_index, other)


def figures_at_threshold(
    probs: np.ndarray,
    labels: np.ndarray,
    groups: Sequence[str],
    positive_index: int,
    threshold: float | np.ndarray,
    *,
    chosen_on: str = "validation",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy, balanced accuracy and F1 / precision / recall of the positive class when
    ``threshold`` decides (one value, or one per item), each with its 95 % interval over
    ``groups``; ``chosen_on`` says where the threshold came from (it goes into the output,
    so no report can lose it)."""
    y = np.asarray(labels)
    pred = predict_at(probs, positive_index, threshold)
    pos = (y == positive_index).astype(float)
    is_pos = (pred == positive_index).astype(float)
    stats = {
        "accuracy": accuracy_statistic(pred == y),
        "balanced_accuracy": balanced_accuracy_statistic(pred, y),
        "f1": f1_statistic(pred, y, positive_index),
        "precision": accuracy_statistic(pred == y, is_pos),
        "recall": accuracy_statistic(pred == y, pos),
    }
    ivs = bootstrap_items(groups, stats, resamples=resamples, seed=seed)
    t = np.unique(np.asarray(threshold, dtype=float))
    return {
        "threshold": float(t[0]) if len(t) == 1 else None,
        "thresholds": [float(v) for v in t],
        "chosen_on": chosen_on,
        "n": len(y),
        **{k: ivs[k].value for k in THRESHOLD_FIGURES},
        "intervals": {k: interval_dict(ivs[k]) for k in THRESHOLD_FIGURES},
    }
