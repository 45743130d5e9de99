"""The domain-check evaluation: its image sets and its intervals."""

from __future__ import annotations

import numpy as np
import pytest

from stemwatch.core.quality import check_quality
from stemwatch.evaluation.domain_eval import group_bootstrap, wilson
from stemwatch.evaluation.domain_sets import Frame, bad_frames, bin_pixels, defocused, fluorescence


def test_wilson_interval() -> None:
    lo, hi = wilson(0, 240)
    assert lo == 0.0 and hi == pytest.approx(0.0158, abs=1e-3)
    lo, hi = wilson(5, 240)
    assert lo < 5 / 240 < hi and hi == pytest.approx(0.0478, abs=1e-3)
    assert all(np.isnan(wilson(0, 0)))


def test_group_bootstrap_is_wider_when_flags_cluster_in_groups() -> None:
    spread = [i % 10 == 0 for i in range(200)]  # one in ten, in every group
    clustered = [i < 20 for i in range(200)]  # the same share, all in two groups
    groups = [f"w{i // 10}" for i in range(200)]
    lo_s, hi_s = group_bootstrap(spread, groups)
    lo_c, hi_c = group_bootstrap(clustered, groups)
    assert lo_s == hi_s == pytest.approx(0.1)
    assert hi_c - lo_c > 0.05 and lo_c <= 0.1 <= hi_c
    assert all(np.isnan(group_bootstrap([True, False], ["a", "a"])))


def test_bad_frames_are_what_they_claim() -> None:
    frames = bad_frames(128, np.random.default_rng(0), repeats=1)
    kinds = {
        f.name.rsplit("-", 1)[0]: check_quality(f.pixels, bit_depth=f.bit_depth) for f in frames
    }
    assert {k for k, issue in kinds.items() if issue is not None} == {
        "zeros", "constant", "nan", "saturated-8bit", "saturated-12bit"
    }  # fmt: skip
    assert kinds["dark"] is None and kinds["empty-lit"] is None  # the domain check's


def test_fluorescence_is_bright_cells_on_a_dark_background() -> None:
    for stain in ("nuclear", "cytoplasm"):
        (f,) = fluorescence(1, 256, np.random.default_rng(1), stain=stain)
        px = f.pixels.astype(float)
        assert f.pixels.dtype == np.uint16 and px.max() <= 4095
        assert np.median(px) < 0.2 * px.max()  # mostly background
    with pytest.raises(ValueError, match="stain"):
        fluorescence(1, 64, np.random.default_rng(0), stain="membrane")


def test_blur_and_binning_keep_dtype_and_group() -> None:
    img = np.random.default_rng(2).integers(0, 4096, (64, 64)).astype(np.uint16)
    (blurred,) = defocused([Frame("a", img, "w1", 12)], 2.0)
    assert blurred.pixels.dtype == np.uint16 and blurred.group == "w1"
    assert blurred.pixels.std() < img.std()
    binned = bin_pixels(img, 4)
    assert binned.shape == (16, 16) and binned.dtype == np.uint16
    assert binned[0, 0] == round(img[:4, :4].mean())
