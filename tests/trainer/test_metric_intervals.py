"""Every reported figure's weighted form equals the figure; intervals and the small-set
warning."""

from __future__ import annotations

import numpy as np
import pytest

from stemwatch.core.intervals import Interval
from trainer.evaluate import classification_metrics
from trainer.metric_intervals import (
    figure_intervals,
    figure_statistics,
    from_hours_intervals,
    groups_per_class,
    small_test_set_warning,
)

CLASSES = ["undifferentiated", "differentiated"]


def predictions(n: int = 300, n_classes: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes)) + 1.5 * np.eye(n_classes)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return p.round(2) / p.round(2).sum(axis=1, keepdims=True), y  # rounded: ties in scores


@pytest.mark.parametrize("n_classes", [2, 3])
def test_weighted_figures_equal_the_reported_figures(n_classes: int) -> None:
    p, y = predictions(n_classes=n_classes)
    names = [f"c{i}" for i in range(n_classes)]
    ref = classification_metrics(p, y, names, 1)
    ones = np.ones((1, len(y)))
    for name, stat in figure_statistics(p, y, 1).items():
        expected = ref["per_class"]["c1"]["f1"] if name == "f1" else ref[name]
        assert stat(ones)[0] == pytest.approx(expected, abs=1e-12), name


def test_double_weight_equals_duplicated_images() -> None:
    p, y = predictions(n=60)
    w = np.ones((1, 60))
    w[0, :10] = 2
    twice = np.r_[np.arange(60), np.arange(10)]
    for name, stat in figure_statistics(p, y, 1).items():
        dup = figure_statistics(p[twice], y[twice], 1)[name](np.ones((1, 70)))[0]
        assert stat(w)[0] == pytest.approx(dup, abs=1e-12), name


def test_intervals_of_figures_and_hours() -> None:
    p, y = predictions(n=400)
    groups = [f"w{i % 40}" for i in range(400)]
    hours = [float(h) for h in np.arange(400) % 4 * 6]
    figures, by_hours = figure_intervals(p, y, groups, 1, hours, resamples=500)
    ref = classification_metrics(p, y, CLASSES, 1, hours)
    assert set(figures) == {"accuracy", "balanced_accuracy", "roc_auc", "f1", "macro_f1", "ece"}
    for name, iv in figures.items():
        assert iv.n_groups == 40 and iv.low is not None and iv.high is not None
        assert iv.low <= iv.value <= iv.high or name == "ece", name  # ECE is biased upward
    assert figures["roc_auc"].value == pytest.approx(ref["roc_auc"])
    assert set(by_hours) == {"0", "6", "12", "18"}
    for h, iv in by_hours.items():
        assert iv.value == pytest.approx(ref["accuracy_by_hours"][h]["accuracy"])
    again, _ = figure_intervals(p, y, groups, 1, hours, resamples=500)
    assert again == figures  # fixed seed


def test_balanced_accuracy_from_each_hour_on() -> None:
    """Balanced accuracy "from 12 h on" is that of the images at 12 h or later, with an
    interval over the same groups; at the first hour it is the overall figure."""
    from sklearn.metrics import balanced_accuracy_score

    p, y = predictions(n=400)
    groups = [f"w{i % 40}" for i in range(400)]
    hours = np.arange(400) % 4 * 6.0
    p[hours >= 12] = np.eye(2)[y[hours >= 12]]  # perfect from 12 h on
    out = from_hours_intervals(p, y, groups, [*hours[:-1], None], resamples=500)
    assert list(out) == ["0", "6", "12", "18"]
    pred = p.argmax(axis=1)
    known = np.arange(400) < 399
    for key, iv in out.items():
        m = known & (hours >= float(key))
        assert iv.value == pytest.approx(balanced_accuracy_score(y[m], pred[m])), key
        assert iv.n_groups == 40 and iv.low is not None and iv.high is not None
    assert out["12"].value == out["12"].low == out["12"].high == 1.0
    assert out["0"].value < 0.95 and out["0"].low < out["0"].value < out["0"].high
    assert from_hours_intervals(p[:0], y[:0], [], []) == {}


def test_one_class_test_set_has_no_auc() -> None:
    p, _ = predictions(n=20)
    figures, _ = figure_intervals(p, np.ones(20, int), [f"w{i}" for i in range(20)], 1)
    assert "roc_auc" not in figures and figures["accuracy"].value is not None


def test_small_test_set_warning_names_the_width() -> None:
    labels = [0] * 8 + [1] * 8
    groups = [f"A{i}" for i in range(4) for _ in range(2)] + [f"B{i}" for i in range(8)]
    assert groups_per_class(labels, groups, 2) == [4, 8]
    msg = small_test_set_warning(labels, groups, CLASSES, "well", Interval(0.7, 0.4, 0.9, 12))
    assert msg is not None
    assert "4 undifferentiated, 8 differentiated wells" in msg
    assert "0.50 wide" in msg and "0.700 [0.400, 0.900]" in msg and "under 10 wells" in msg
    big = [f"W{i}" for i in range(40)]
    assert small_test_set_warning([0] * 20 + [1] * 20, big, CLASSES, "well", None) is None
    plates = small_test_set_warning([0, 1], ["p1", "p2"], CLASSES, "plate", None)
    assert plates is not None and "1 undifferentiated, 1 differentiated plates" in plates


def test_a_resample_without_positives_leaves_f1_undefined_not_zero() -> None:
    # well A: two correct negatives; well B: two correct positives. Resamples of A alone have
    # no positive: their F1 is undefined (dropped), not 0, so the interval stays at 1.
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
    y = np.array([0, 0, 1, 1])
    figures, _ = figure_intervals(p, y, ["A", "A", "B", "B"], 1, resamples=400)
    assert (figures["f1"].value, figures["f1"].low, figures["f1"].high) == (1.0, 1.0, 1.0)
    assert figures["macro_f1"].low == 1.0
