"""The image-quality check before inference: blank, saturated and all-NaN frames."""

from __future__ import annotations

import numpy as np
import pytest

from stemwatch.core.quality import QualityConfig, check_quality


def brightfield(dtype: type = np.uint16, top: float = 4095.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.normal(0.45 * top, 0.08 * top, (512, 512))
    return np.clip(img, 0, top).astype(dtype)


@pytest.mark.parametrize(
    ("pixels", "bits", "kind", "words"),
    [
        (np.zeros((256, 256), np.uint16), 12, "blank", "every pixel is 0"),
        (np.full((256, 256), 1234, np.uint16), 16, "blank", "every pixel is 1234"),
        (np.full((256, 256), np.nan, np.float32), 32, "nonfinite", "no pixel is a finite"),
        (np.full((256, 256), 255, np.uint8), 8, "saturated", "100% of pixels at 255"),
    ],
)
def test_frames_that_are_not_images(pixels: np.ndarray, bits: int, kind: str, words: str) -> None:
    issue = check_quality(pixels, bit_depth=bits)
    assert issue is not None and issue.kind == kind and words in issue.reason
    assert str(issue).startswith(f"{kind}: ")


def test_saturation_is_judged_against_the_significant_bits() -> None:
    img = brightfield()
    img[: 2 * 512 // 3] = 4095  # two thirds at the top of a 12-bit camera in uint16
    issue = check_quality(img, bit_depth=12)
    assert issue is not None and issue.kind == "saturated"
    assert "the top of the 12-bit range" in issue.reason
    assert check_quality(img, bit_depth=16) is None  # 4095 is mid-range for 16-bit data
    assert (
        check_quality(img, bit_depth=12, config=QualityConfig(max_saturated_fraction=0.9)) is None
    )


def test_dark_frame_without_contrast_is_blank() -> None:
    rng = np.random.default_rng(1)
    dark = np.clip(rng.normal(100, 2, (512, 512)), 0, 65535).astype(np.uint16)  # read noise
    issue = check_quality(dark, bit_depth=16)
    assert issue is not None and issue.kind == "blank" and "no contrast" in issue.reason
    # the same noise in an 8-bit range is contrast: left to the domain check
    assert check_quality(np.clip(dark - 60, 0, 255).astype(np.uint8), bit_depth=8) is None


def test_real_looking_frames_pass() -> None:
    assert check_quality(brightfield(), bit_depth=12) is None
    assert check_quality(brightfield(np.uint8, 255.0), bit_depth=8) is None
    floats = brightfield().astype(np.float32) / 4095
    floats[:100] = np.nan  # a few NaN rows: the normalisation makes them 0
    assert check_quality(floats) is None
    assert check_quality(np.array([[0, 1], [1, 0]], bool)) is None


def test_mostly_nan_is_marked_and_thresholds_come_from_the_config() -> None:
    img = np.full((300, 300), np.nan, np.float32)
    img[:60] = np.random.default_rng(2).random((60, 300))
    issue = check_quality(img)
    assert issue is not None and issue.kind == "nonfinite" and "only 20% of pixels" in issue.reason
    assert check_quality(img, config=QualityConfig(min_finite_fraction=0.1)) is None
