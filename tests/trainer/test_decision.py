"""The validation-chosen decision threshold: it maximises F1 where chosen, and the figures at a
threshold equal scikit-learn's, with intervals over groups."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from trainer.decision import f1_threshold, figures_at_threshold, predict_at


def rare_positives(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two-class probabilities of a model that under-calls a rare (17 %) positive class."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.17).astype(int)
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + 2.0 * y - 2.2)))
    return np.stack([1 - score, score], axis=1), y


def test_the_chosen_threshold_maximises_f1_over_a_grid() -> None:
    p, y = rare_positives()
    t = f1_threshold(p[:, 1], y == 1)
    best = f1_score(y, predict_at(p, 1, t))
    grid = [f1_score(y, (p[:, 1] >= g).astype(int)) for g in np.linspace(0, 1, 201)]
    assert best >= max(grid) - 1e-12
    assert best > f1_score(y, p.argmax(axis=1)) + 0.02  # the point of it: 0.5 under-calls
    assert t < 0.5


def test_separable_scores_split_between_the_classes() -> None:
    t = f1_threshold([0.1, 0.2, 0.3, 0.6, 0.7], [False, False, False, True, True])
    assert 0.3 < t < 0.6
    # one class only: nothing to choose, argmax's 0.5
    assert f1_threshold([0.2, 0.9], [False, False]) == 0.5
    assert f1_threshold([0.2, 0.9], [True, True]) == 0.5
    with pytest.raises(ValueError, match="3 scores but 2 labels"):
        f1_threshold([0.1, 0.2, 0.3], [True, False])


def test_predict_at_needs_two_classes_and_decides_at_the_threshold() -> None:
    p = np.array([[0.7, 0.3], [0.4, 0.6], [0.75, 0.25]])
    assert predict_at(p, 1, 0.5).tolist() == [0, 1, 0]
    assert predict_at(p, 1, 0.3).tolist() == [1, 1, 0]
    assert predict_at(p, 0, 0.7).tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="two classes"):
        predict_at(np.full((2, 3), 1 / 3), 1, 0.5)


def test_figures_at_a_threshold_equal_sklearn_with_intervals_over_groups() -> None:
    p, y = rare_positives()
    groups = [f"w{i // 10}" for i in range(len(y))]
    out = figures_at_threshold(p, y, groups, 1, 0.3, chosen_on="validation")
    pred = (p[:, 1] >= 0.3).astype(int)
    iv = out["intervals"]
    assert out["threshold"] == 0.3 and out["chosen_on"] == "validation"
    assert iv["accuracy"]["value"] == pytest.approx(accuracy_score(y, pred))
    assert iv["balanced_accuracy"]["value"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert iv["f1"]["value"] == pytest.approx(f1_score(y, pred))
    assert iv["precision"]["value"] == pytest.approx((y[pred == 1] == 1).mean())
    assert iv["recall"]["value"] == pytest.approx((pred[y == 1] == 1).mean())
    for name, fig in iv.items():
        assert fig["low"] <= fig["value"] <= fig["high"], name
        assert fig["n_groups"] == 40
