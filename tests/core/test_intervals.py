"""The bootstrap over groups: coverage on a known case, determinism, groups move whole."""

from __future__ import annotations

import numpy as np
import pytest

from stemwatch.core.intervals import bootstrap_items


def accuracy(correct: np.ndarray):
    c = np.asarray(correct, dtype=float)
    return lambda w: (w @ c) / w.sum(axis=1)


def clustered_sample(rng: np.random.Generator, n_groups: int = 30, per_group: int = 20):
    """Groups whose own accuracy varies a lot around a known population accuracy of 0.8
    (Beta(4, 1) has mean 0.8): images of one group are far from independent."""
    group_acc = rng.beta(4.0, 1.0, size=n_groups)
    correct = (rng.random((n_groups, per_group)) < group_acc[:, None]).ravel()
    groups = np.repeat([f"w{i}" for i in range(n_groups)], per_group)
    return correct, groups


def test_interval_covers_the_truth_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(123)
    covered_groups = covered_images = 0
    trials = 200
    for _ in range(trials):
        correct, groups = clustered_sample(rng)
        by_group = bootstrap_items(groups, {"acc": accuracy(correct)}, resamples=500)["acc"]
        # the same figure resampled image by image, as if images were independent
        by_image = bootstrap_items(
            np.arange(len(groups)).astype(str), {"acc": accuracy(correct)}, resamples=500
        )["acc"]
        assert by_group.low is not None and by_group.high is not None
        assert by_image.low is not None and by_image.high is not None
        covered_groups += by_group.low <= 0.8 <= by_group.high
        covered_images += by_image.low <= 0.8 <= by_image.high
    # a percentile bootstrap over 30 groups covers a little under its nominal 95 %
    assert 0.88 <= covered_groups / trials <= 0.99, covered_groups
    # resampling images instead of wells is overconfident on clustered data
    assert covered_images / trials < 0.8, covered_images


def test_same_seed_same_interval_other_seed_other_resamples() -> None:
    correct, groups = clustered_sample(np.random.default_rng(0))
    stats = {"acc": accuracy(correct)}
    a = bootstrap_items(groups, stats, seed=7)["acc"]
    b = bootstrap_items(groups, stats, seed=7)["acc"]
    c = bootstrap_items(groups, stats, seed=8)["acc"]
    assert a == b
    assert a.value == c.value and (a.low, a.high) != (c.low, c.high)
    # the chunk size only changes memory, never the figures
    assert bootstrap_items(groups, stats, seed=7, chunk=7)["acc"] == a


def test_a_group_is_resampled_with_all_its_images() -> None:
    # well A: 100 correct images; well B: one wrong image. Resampling wells, a quarter of the
    # resamples are B twice (accuracy 0); resampling images, that almost never happens.
    correct = np.r_[np.ones(100), 0.0]
    groups = ["A"] * 100 + ["B"]
    iv = bootstrap_items(groups, {"acc": accuracy(correct)}, resamples=4000)["acc"]
    assert iv.value == pytest.approx(100 / 101)
    assert iv.low == 0.0 and iv.high == 1.0 and iv.n_groups == 2


def test_too_few_groups_give_no_bounds_and_nan_resamples_are_left_out() -> None:
    one = bootstrap_items(["A"] * 5, {"acc": accuracy(np.ones(5))})["acc"]
    assert (one.value, one.low, one.high, one.n_groups) == (1.0, None, None, 1)
    empty = bootstrap_items([], {"acc": accuracy(np.ones(0))})["acc"]
    assert empty.value is None and empty.n_groups == 0
    # recall of class 1 is undefined in resamples without its only well: those are dropped
    labels = np.array([0, 0, 1, 1])
    recall = lambda w: (w @ (labels == 1)) / (w @ (labels == 1))  # noqa: E731
    iv = bootstrap_items(["a", "b", "c", "c"], {"r": recall})["r"]
    assert iv.value == 1.0 and iv.low == 1.0 and iv.high == 1.0


def test_binomial_over_wells_is_exact_and_never_collapses() -> None:
    from stemwatch.core.intervals import binomial

    all_detected = binomial(12, 12)
    assert all_detected.value == 1.0 and all_detected.high == 1.0
    assert all_detected.low == pytest.approx(0.025 ** (1 / 12))  # Clopper-Pearson at n/n
    none = binomial(0, 12)
    assert (none.value, none.low) == (0.0, 0.0)
    assert none.high == pytest.approx(1 - 0.025 ** (1 / 12))
    half = binomial(6, 12)
    assert half.low == pytest.approx(0.2109, abs=1e-4) and half.high == pytest.approx(
        0.7891, abs=1e-4
    )
    assert binomial(0, 0).value is None
    with pytest.raises(ValueError, match=r"in 0\.\.3"):
        binomial(4, 3)
