"""The thresholding rule of `stemwatch label`: Otsu only on a bimodal histogram."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.label import block_labels
from trainer.threshold import (
    ThresholdRule,
    bimodality,
    binarise,
    choose_threshold,
    otsu_threshold,
)

BLOCK = 32


def background(rng: np.random.Generator, shape=(4 * BLOCK, 4 * BLOCK)) -> np.ndarray:
    """Camera offset with read noise and a mild illumination gradient: no stain anywhere."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / shape[0]
    return 120.0 + 6.0 * (yy + xx) + rng.normal(0.0, 6.0, shape)


def stain(img: np.ndarray, blocks: set[tuple[int, int]], level: float) -> np.ndarray:
    out = img.copy()
    for r, c in blocks:
        out[r * BLOCK : (r + 1) * BLOCK, c * BLOCK : c * BLOCK + BLOCK * 3 // 4] += level
    return out


def labels(img: np.ndarray, control: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    t = choose_threshold(img, ThresholdRule(), control)
    return block_labels(binarise(img, t), BLOCK, 0.3), t.method


def test_background_only_image_has_no_positive_block() -> None:
    img = background(np.random.default_rng(0))
    lab, method = labels(img)
    assert method == "background"
    assert not lab.any()
    # what the old default did: Otsu on a unimodal histogram calls about half the field stained
    assert block_labels(img > otsu_threshold(img), BLOCK, 0.3).sum() >= 4


def test_bimodal_histogram_uses_otsu_and_finds_the_stained_blocks() -> None:
    img = stain(background(np.random.default_rng(1)), {(0, 0), (2, 3)}, 150.0)
    lab, method = labels(img)
    assert method == "otsu"
    assert sorted(zip(*np.nonzero(lab), strict=True)) == [(0, 0), (2, 3)]


@pytest.mark.parametrize(
    ("name", "img_fn", "bimodal"),
    [
        ("gaussian", lambda r: r.normal(100, 5, (256, 256)), False),
        ("poisson", lambda r: r.poisson(20, (256, 256)).astype(float), False),
        ("gradient (flat histogram)", lambda r: r.uniform(0, 100, (256, 256)), False),
        ("2 % bright", lambda r: stain(r.normal(100, 5, (128, 128)), {(0, 0)}, 60.0), True),
    ],
)
def test_bimodality_test(name: str, img_fn, bimodal: bool) -> None:
    img = img_fn(np.random.default_rng(2))
    d, sep = bimodality(img, otsu_threshold(img))
    assert (choose_threshold(img).method == "otsu") is bimodal, (name, d, sep)


def test_faint_staining_is_missed_not_invented() -> None:
    """Stain at 2 noise sds: not bimodal, below the background threshold (Kusumoto's false
    negatives), and no block of the unstained rest turns positive."""
    rng = np.random.default_rng(3)
    img = stain(background(rng), {(1, 1)}, 12.0)
    lab, method = labels(img)
    assert method == "background"
    assert not lab.any()
    bright = stain(background(rng), {(1, 1)}, 120.0)
    assert labels(bright)[0].sum() == 1


def test_field_stained_all_over_needs_a_control() -> None:
    """Every cell stained: a single mode, so only a control image tells stain from background."""
    rng = np.random.default_rng(4)
    img = background(rng) + 100.0
    control = background(rng)
    assert not labels(img)[0].any()  # relative to its own median nothing stands out
    lab, method = labels(img, control)
    assert method == "control"
    assert lab.all()
    # a control of the same plate with no stain labels an unstained field negative
    assert not labels(background(rng), control)[0].any()


def test_fixed_threshold_overrides() -> None:
    img = background(np.random.default_rng(5))
    t = choose_threshold(img, ThresholdRule(fixed=130.0))
    assert (t.method, t.value) == ("fixed", 130.0)
    assert "fixed" in t.describe()
