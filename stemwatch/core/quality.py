"""A cheap image-quality check before inference: frames that are not images of anything.

A blank frame (every pixel the same, a lamp that did not fire, a camera that sent zeros), an
all-NaN frame (a failed float export) or a saturated one (the exposure ran into the top of
the camera's range) carries no cells. Normalised and tiled, it still gives the model an
input and the model still answers (0.13 for an all-zero frame with the first bundled model),
and that answer would feed the well's series. :func:`check_quality` recognises such frames
from the decoded plane before anything else is done with it, and says why; the monitor marks
them and never scores them as cells.

The rules are deliberately narrow (a frame that passes may still be out of the model's
domain: dark frames with read noise, empty but lit fields, defocused frames are the domain
check's, :mod:`stemwatch.core.domain`):

- ``nonfinite``: fewer than ``min_finite_fraction`` of the pixels are finite numbers;
- ``blank``: the finite pixels span (between the 1st and 99.8th percentile, as the
  normalisation takes them) less than ``min_span_fraction`` of the camera's range
  (``2 ** bit_depth - 1`` for integer data; for float data, of the brightest pixel's
  magnitude), or nothing at all: nothing to normalise, only quantisation noise;
- ``saturated``: at least ``max_saturated_fraction`` of the pixels sit at the top of the
  camera's range (integer data only; float data has no known top).

Percentiles and fractions are taken on an evenly strided grid of at most 16,384 pixels (a
128 x 128 grid), so the check costs about 0.3 ms on a 2048 x 2048 frame (2.7 ms on the
normalisation's 65,536-pixel grid, a third of what preparing the frame costs).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from pydantic import Field

from stemwatch.core.config import StrictModel

QualityKind = Literal["nonfinite", "blank", "saturated"]
_SAMPLES = 16384


class QualityConfig(StrictModel):
    """Thresholds of the image-quality check (see :mod:`stemwatch.core.quality`)."""

    enabled: bool = Field(True, description="Check every frame before inference.")
    min_finite_fraction: float = Field(
        0.5, ge=0, le=1, description="Frames with fewer finite (not NaN/inf) pixels are marked."
    )
    min_span_fraction: float = Field(
        0.005,
        ge=0,
        le=1,
        description="Frames whose 1st-99.8th percentile span is below this fraction of the\n"
        "camera's range (2^bits - 1) are blank.",
    )
    max_saturated_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Frames with at least this fraction of pixels at the top of the camera's\n"
        "range are saturated.",
    )


class QualityIssue(NamedTuple):
    """Why a frame is not analysed."""

    kind: QualityKind
    reason: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason}"


def _grid(pixels: np.ndarray) -> np.ndarray:
    if pixels.size <= _SAMPLES:
        return pixels
    step = int(np.ceil(np.sqrt(pixels.size / _SAMPLES)))
    return pixels[::step, ::step] if pixels.ndim == 2 else pixels.reshape(-1)[::step]


def check_quality(
    pixels: np.ndarray, *, bit_depth: int | None = None, config: QualityConfig | None = None
) -> QualityIssue | None:
    """The reason ``pixels`` (one decoded plane) is not an image to analyse, or None.

    ``bit_depth``: significant bits of integer data (the reader's
    :attr:`~stemwatch.core.imaging.ImageData.bit_depth`); default: the dtype's.
    """
    cfg = config or QualityConfig()
    x = np.asarray(pixels)
    if x.dtype.kind == "b":
        x = x.view(np.uint8)
    if x.size == 0:
        return QualityIssue("blank", "the frame has no pixels")
    sample = _grid(x)
    integer = x.dtype.kind in "ui"
    if not integer:
        finite = np.isfinite(sample)
        share = float(finite.mean())
        if share < cfg.min_finite_fraction:
            what = "no pixel is" if share == 0 else f"only {100 * share:.0f}% of pixels are"
            return QualityIssue("nonfinite", f"{what} a finite number (NaN or inf)")
        sample = sample[finite]
    else:
        sample = sample.reshape(-1)
    if pixels.dtype.kind == "b":  # a mask, not a camera frame: only "blank" applies
        scale = 1.0
    elif integer:
        bits = bit_depth or x.dtype.itemsize * 8
        top = float(min((1 << bits) - 1, np.iinfo(x.dtype).max))
        at_top = float(np.count_nonzero(sample >= top)) / sample.size
        if at_top >= cfg.max_saturated_fraction:
            return QualityIssue(
                "saturated",
                f"{100 * at_top:.0f}% of pixels at {top:g}, the top of the {bits}-bit range "
                "(overexposed)",
            )
        scale = top
    else:
        scale = float(np.max(np.abs(sample))) if sample.size else 0.0
    lo, hi = (float(v) for v in np.percentile(sample, [1.0, 99.8]))
    if hi <= lo or (scale > 0 and hi - lo < cfg.min_span_fraction * scale):
        if float(sample.min()) == float(sample.max()):
            return QualityIssue("blank", f"every pixel is {float(sample.min()):g}")
        return QualityIssue(
            "blank",
            f"no contrast: pixels span {lo:g}..{hi:g}, under "
            f"{100 * cfg.min_span_fraction:g}% of the range {scale:g}",
        )
    return None
