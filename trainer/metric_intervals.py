"""95 % intervals of a classifier's figures, from a bootstrap over the split's grouping unit.

Every figure an evaluation reports (accuracy, balanced accuracy, ROC-AUC, F1 of the positive
class, macro F1, expected calibration error, accuracy per hours since induction) is written
here as a function of per-image weights, so :func:`stemwatch.core.intervals.bootstrap_items`
can resample wells (or plates, or experiments: whatever the split grouped by) together with
their images. At weight 1 for every image each function equals the point figure of
:func:`trainer.evaluate.classification_metrics` (tested), so the interval belongs to the
figure printed beside it.

A test set with fewer than :data:`MIN_GROUPS_PER_CLASS` groups of a class gives unstable
figures; :func:`small_test_set_warning` says so and names the width of the interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from stemwatch.core.intervals import DEFAULT_RESAMPLES, Interval, bootstrap_items

Statistic = Callable[[np.ndarray], np.ndarray]

FIGURES = {
    "balanced_accuracy": "balanced accuracy",
    "accuracy": "accuracy",
    "roc_auc": "ROC-AUC",
    "f1": "F1 (positive class)",
    "macro_f1": "macro F1",
    "ece": "ECE",
}
"""The figures that get an interval, with their names in reports, in report order."""
MIN_GROUPS_PER_CLASS = 10
"""Below this many groups of a class in a test set, figures come with a warning."""
UNIT_PLURAL = {"well": "wells", "plate": "plates", "experiment": "experiments"}


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def accuracy_statistic(correct: np.ndarray, mask: np.ndarray | None = None) -> Statistic:
    """Share of correct items (among ``mask``)."""
    c = np.asarray(correct, dtype=float)
    m = np.ones_like(c) if mask is None else np.asarray(mask, dtype=float)
    return lambda w: _ratio(w @ (c * m), w @ m)


def balanced_accuracy_statistic(
    pred: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None
) -> Statistic:
    """Mean recall over the classes present in ``labels`` (among ``mask``; scikit-learn's
    definition); NaN in a resample that lost a class."""
    y = np.asarray(labels)
    m = np.ones(len(y), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    correct = (np.asarray(pred) == y).astype(float)
    present = np.unique(y[m])
    hit = np.stack([correct * ((y == c) & m) for c in present], axis=1)
    tot = np.stack([((y == c) & m).astype(float) for c in present], axis=1)
    return lambda w: _ratio(w @ hit, w @ tot).mean(axis=1)


def f1_statistic(pred: np.ndarray, labels: np.ndarray, cls: int) -> Statistic:
    """F1 of class ``cls`` (0 where it is neither true nor predicted: zero_division=0).
    A resample without any true item of the class leaves its F1 undefined (NaN, like its
    recall), when the data has some; a class absent from the data scores 0 throughout, as
    in scikit-learn."""
    p = np.asarray(pred) == cls
    t = np.asarray(labels) == cls
    tp, fp, fn = (p & t).astype(float), (p & ~t).astype(float), (~p & t).astype(float)
    present = bool(t.any())

    def stat(w: np.ndarray) -> np.ndarray:
        num = 2 * (w @ tp)
        den = num + w @ fp + w @ fn
        f1 = np.nan_to_num(_ratio(num, den), nan=0.0)
        return np.where(w @ t > 0, f1, np.nan) if present else f1

    return stat


def macro_f1_statistic(pred: np.ndarray, labels: np.ndarray, n_classes: int) -> Statistic:
    stats = [f1_statistic(pred, labels, c) for c in range(n_classes)]
    return lambda w: np.mean([s(w) for s in stats], axis=0)


def roc_auc_statistic(scores: np.ndarray, positive: np.ndarray) -> Statistic:
    """Weighted Mann-Whitney ROC-AUC of ``scores`` for the ``positive`` items (ties count
    one half): the probability that a positive outranks a negative."""
    order = np.argsort(np.asarray(scores, dtype=float), kind="stable")
    s = np.asarray(scores, dtype=float)[order]
    pos = np.asarray(positive, dtype=bool)[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])

    def stat(w: np.ndarray) -> np.ndarray:
        ws = w[:, order]
        p = np.add.reduceat(ws * pos, starts, axis=1)
        n = np.add.reduceat(ws * ~pos, starts, axis=1)
        below = np.cumsum(n, axis=1) - n
        return _ratio((p * (below + 0.5 * n)).sum(axis=1), p.sum(axis=1) * n.sum(axis=1))

    return stat


def ece_statistic(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> Statistic:
    """Top-label expected calibration error over equal-width confidence bins
    (:func:`trainer.calibrate.expected_calibration_error`)."""
    p = np.asarray(probs, dtype=float)
    conf = p.max(axis=1)
    gap = (p.argmax(axis=1) == np.asarray(labels)).astype(float) - conf
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    per_bin = np.stack([gap * (bins == b) for b in range(n_bins)], axis=1)
    return lambda w: _ratio(np.abs(w @ per_bin).sum(axis=1), w.sum(axis=1))


def figure_statistics(
    probs: np.ndarray, labels: np.ndarray, positive_index: int
) -> dict[str, Statistic]:
    """The weighted form of every figure in :data:`FIGURES` (ROC-AUC: one-vs-rest macro
    average with more than two classes; left out when only one class is present)."""
    p = np.asarray(probs, dtype=float)
    y = np.asarray(labels)
    n_classes = p.shape[1]
    pred = p.argmax(axis=1)
    stats: dict[str, Statistic] = {
        "accuracy": accuracy_statistic(pred == y),
        "balanced_accuracy": balanced_accuracy_statistic(pred, y),
        "f1": f1_statistic(pred, y, positive_index),
        "macro_f1": macro_f1_statistic(pred, y, n_classes),
        "ece": ece_statistic(p, y),
    }
    if len(np.unique(y)) > 1:
        if n_classes == 2:
            stats["roc_auc"] = roc_auc_statistic(p[:, positive_index], y == positive_index)
        else:
            per_class = [roc_auc_statistic(p[:, c], y == c) for c in range(n_classes)]
            stats["roc_auc"] = lambda w: np.mean([s(w) for s in per_class], axis=0)
    return stats


def hours_key(h: float) -> str:
    """The key of an hours-since-induction value (as in ``accuracy_by_hours``)."""
    return f"{h:g}"


def figure_intervals(
    probs: np.ndarray,
    labels: np.ndarray,
    groups: Sequence[str],
    positive_index: int,
    hours: Sequence[float | None] | None = None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[dict[str, Interval], dict[str, Interval]]:
    """Intervals of every figure, and of the accuracy per hours since induction, from one
    set of resamples of ``groups`` (one group key per item)."""
    p = np.asarray(probs, dtype=float)
    y = np.asarray(labels)
    if len(y) == 0:
        return {}, {}
    stats = figure_statistics(p, y, positive_index)
    correct = p.argmax(axis=1) == y
    by_hours: dict[str, Statistic] = {}
    if hours is not None:
        h = np.array([np.nan if v is None else float(v) for v in hours])
        for value in sorted({float(v) for v in h if not math.isnan(v)}):
            by_hours[f"hours:{hours_key(value)}"] = accuracy_statistic(correct, h == value)
    out = bootstrap_items(
        groups, {**stats, **by_hours}, resamples=resamples, seed=seed, level=level
    )
    figures = {k: out[k] for k in stats}
    hourly = {k.removeprefix("hours:"): out[k] for k in by_hours}
    return figures, hourly


def from_hours_intervals(
    probs: np.ndarray,
    labels: np.ndarray,
    groups: Sequence[str],
    hours: Sequence[float | None],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Interval]:
    """Balanced accuracy of the images at or after each hours-since-induction value (keys as
    in ``accuracy_by_hours``): from when on a model can be trusted, e.g. "from 12 h on". The
    same resamples as :func:`figure_intervals` (same groups, same seed)."""
    y = np.asarray(labels)
    if len(y) == 0:
        return {}
    pred = np.asarray(probs, dtype=float).argmax(axis=1)
    h = np.array([np.nan if v is None else float(v) for v in hours])
    stats = {
        hours_key(value): balanced_accuracy_statistic(pred, y, h >= value)
        for value in sorted({float(v) for v in h if not math.isnan(v)})
    }
    return bootstrap_items(groups, stats, resamples=resamples, seed=seed, level=level)


def interval_text(iv: Mapping[str, Any] | None) -> str:
    """``0.912 [0.850, 0.960]`` from an interval's JSON form (``n/a`` without a value,
    ``[n/a]`` without bounds)."""
    if not iv:
        return "n/a"
    return Interval(iv.get("value"), iv.get("low"), iv.get("high"), iv.get("n_groups", 0)).text()


def hours_interval_text(entry: Mapping[str, Any]) -> str:
    """:func:`interval_text` of an ``accuracy_by_hours`` entry."""
    return interval_text({"value": entry.get("accuracy"), **entry})


def from_hours_text(entry: Mapping[str, Any]) -> str:
    """:func:`interval_text` of an ``accuracy_by_hours`` entry's ``balanced_accuracy_from``
    (the balanced accuracy of the images at or after that hour)."""
    return interval_text(entry.get("balanced_accuracy_from"))


def interval_dict(iv: Interval) -> dict[str, Any]:
    """JSON form: value, low, high, n_groups, level."""
    return {
        "value": iv.value,
        "low": iv.low,
        "high": iv.high,
        "n_groups": iv.n_groups,
        "level": iv.level,
    }


def groups_per_class(labels: Sequence[int], groups: Sequence[str], n_classes: int) -> list[int]:
    """How many distinct groups hold at least one item of each class."""
    seen: list[set[str]] = [set() for _ in range(n_classes)]
    for label, group in zip(labels, groups, strict=True):
        seen[int(label)].add(group)
    return [len(s) for s in seen]


def small_test_set_warning(
    labels: Sequence[int],
    groups: Sequence[str],
    class_names: Sequence[str],
    unit: str,
    balanced_accuracy: Interval | None,
) -> str | None:
    """A warning when a class present in the test set has fewer than
    :data:`MIN_GROUPS_PER_CLASS` groups; it names the balanced accuracy's interval width."""
    counts = groups_per_class(labels, groups, len(class_names))
    present = [(name, n) for name, n in zip(class_names, counts, strict=True) if n > 0]
    if not present or min(n for _, n in present) >= MIN_GROUPS_PER_CLASS:
        return None
    plural = UNIT_PLURAL.get(unit, f"{unit} groups")
    have = ", ".join(f"{n} {name}" for name, n in present)
    width = balanced_accuracy.width if balanced_accuracy is not None else None
    if width is not None and balanced_accuracy is not None:
        spread = (
            f"the balanced accuracy's 95 % interval is {width:.2f} wide "
            f"({balanced_accuracy.text()})"
        )
    else:
        spread = "too few to compute an interval at all"
    return (
        f"small test set: {have} {plural} (under {MIN_GROUPS_PER_CLASS} {plural} per class), "
        f"so its figures are unstable: {spread}, and a bootstrap over so few {plural} "
        f"understates the uncertainty. Hold out more {plural} (split.test_fraction) or "
        "evaluate on a separate, larger test set."
    )
