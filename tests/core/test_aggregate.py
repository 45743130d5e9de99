"""Tiles to images: one rule (mean of the tiles' probabilities) for trainer and monitor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stemwatch.core.aggregate import image_probabilities, score_image


def test_score_image_is_the_tile_mean_with_its_spread() -> None:
    score = score_image(np.array([0.2, 0.4, 0.6], np.float32))
    assert score.probability == pytest.approx(0.4)
    assert score.tile_sd == pytest.approx(np.std([0.2, 0.4, 0.6])) and score.n_tiles == 3
    probability, tile_sd, n_tiles = score  # unpacks as the monitor's writer uses it
    assert (probability, tile_sd, n_tiles) == tuple(score)


def test_an_image_without_tiles_has_no_probability() -> None:
    score = score_image(np.zeros(0, np.float32))
    assert math.isnan(score.probability) and math.isnan(score.tile_sd) and score.n_tiles == 0


def test_image_probabilities_of_many_images_and_classes() -> None:
    tiles = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8]])
    image = np.array([0, 0, 2])
    got = image_probabilities(tiles, image, 4)
    assert got.shape == (4, 2)
    assert got[0] == pytest.approx([0.8, 0.2]) and got[2] == pytest.approx([0.2, 0.8])
    assert np.isnan(got[1]).all() and np.isnan(got[3]).all()  # no tiles


def test_batched_and_one_image_rules_agree() -> None:
    rng = np.random.default_rng(0)
    tiles = rng.random(40)
    image = rng.integers(0, 5, 40)
    batched = image_probabilities(tiles, image)
    for i in range(5):
        assert batched[i] == pytest.approx(score_image(tiles[image == i]).probability)


def test_mismatched_indices_are_an_error() -> None:
    with pytest.raises(ValueError, match="3 tile probabilities but 2 image indices"):
        image_probabilities(np.ones(3), np.zeros(2, np.int64))
