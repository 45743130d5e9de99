"""Batch augmentation and temperature scaling."""

from __future__ import annotations

import numpy as np
import torch

from trainer.augment import augment_batch
from trainer.calibrate import expected_calibration_error, fit_temperature, softmax
from trainer.config import AugmentSection


def batch() -> torch.Tensor:
    return torch.rand(16, 1, 24, 24, generator=torch.Generator().manual_seed(0))


def test_augmentation_keeps_shape_and_range_and_is_seeded() -> None:
    x = batch()
    cfg = AugmentSection()
    a = augment_batch(x, cfg, torch.Generator().manual_seed(5))
    b = augment_batch(x, cfg, torch.Generator().manual_seed(5))
    c = augment_batch(x, cfg, torch.Generator().manual_seed(6))
    assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, x)


def test_geometric_only_augmentation_permutes_pixels() -> None:
    x = batch()
    cfg = AugmentSection(brightness=0, contrast=0, gamma=0, blur_prob=0, noise_std=0)
    out = augment_batch(x, cfg, torch.Generator().manual_seed(1))
    for i in range(len(x)):  # flips/rotations move pixels but never change their values
        assert torch.equal(out[i].flatten().sort().values, x[i].flatten().sort().values)
    assert not torch.equal(out, x)


def test_disabled_augmentation_is_identity() -> None:
    x = batch()
    assert augment_batch(x, AugmentSection(enabled=False), torch.Generator()) is x


def test_temperature_recovers_overconfidence() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 2)) * 2
    labels = (rng.random(len(true_logits)) < softmax(true_logits)[:, 1]).astype(int)
    overconfident = true_logits * 3.0
    t = fit_temperature(overconfident, labels)
    assert abs(t - 3.0) < 0.3
    before = expected_calibration_error(softmax(overconfident), labels)
    after = expected_calibration_error(softmax(overconfident, t), labels)
    assert after < before / 2


def test_ece_of_perfect_confident_predictions_is_zero() -> None:
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(probs, np.array([0, 1])) == 0.0
    assert expected_calibration_error(probs, np.array([1, 0])) == 1.0
