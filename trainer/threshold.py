"""Thresholding a fluorescence image so that a field with no stained cell has no stained pixel.

Otsu's method always splits a histogram in two, even one with a single mode (background and
unstained cells): on such a field half the cells come out "stained". So Otsu is used only
when the histogram is bimodal, by a stated test on Otsu's own two classes ``lo`` / ``hi``:

- **Ashman's D** >= ``min_ashman_d`` (3): ``D = sqrt(2) |mean_hi - mean_lo| /
  sqrt(var_hi + var_lo)``. Two Gaussians are cleanly separated at D > 2; Otsu's split of a
  *single* Gaussian already gives D = 2.65, so the bar is 3; and
- the upper class stands clear of the lower one's noise: ``(mean_hi - median_lo) / sigma_lo
  >= k`` (``background_k``, 5), with ``sigma_lo = 1.4826 MAD(lo)`` (a robust sd). A smooth
  illumination gradient (a flat histogram, D = 3.5) fails this one (ratio 2.7).

Otherwise the threshold is relative to a background: ``median + k * 1.4826 * MAD`` of a
**control** image when there is one (a no-primary-antibody field of the same plate: the only
way to label a field that is stained all over), else of the image itself (**background**: right
for sparse staining, blind to a field stained all over). A fixed ``threshold`` overrides all
of it. :class:`Threshold` says which rule was used and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

MAD_TO_SD = 1.4826
"""MAD of a Gaussian times this is its sd."""

Method = Literal["otsu", "control", "background", "fixed"]


@dataclass(frozen=True)
class ThresholdRule:
    """The knobs of :func:`choose_threshold`."""

    background_k: float = 5.0
    """Robust sds above the background median that make a pixel stained."""
    min_ashman_d: float = 3.0
    """Ashman's D of Otsu's classes at which a histogram counts as bimodal."""
    fixed: float | None = None
    """A fixed threshold in raw intensity units (overrides the rule)."""


@dataclass(frozen=True)
class Threshold:
    """A threshold, the rule that gave it, and the bimodality figures behind the choice."""

    value: float
    method: Method
    ashman_d: float | None = None
    separation: float | None = None
    """(mean_hi - median_lo) / sigma_lo of Otsu's classes, in robust sds."""

    def describe(self) -> str:
        figures = ""
        if self.ashman_d is not None and self.separation is not None:
            figures = f" (Ashman's D {self.ashman_d:.2f}, separation {self.separation:.1f} sd)"
        why = {
            "otsu": "bimodal histogram: Otsu",
            "control": "not bimodal: control median + k*MAD",
            "background": "not bimodal, no control: image median + k*MAD",
            "fixed": "fixed threshold",
        }[self.method]
        return f"{why}{figures}, threshold {self.value:.1f}"


def otsu_threshold(image: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the cut maximising between-class variance of the histogram."""
    x = np.asarray(image, dtype=np.float64).ravel()
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return lo
    hist, edges = np.histogram(x, bins=bins, range=(lo, hi))
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mean0 = np.divide(m0, w0, out=np.zeros_like(m0), where=w0 > 0)
    mean1 = np.divide(m0[-1] - m0, w1, out=np.zeros_like(m0), where=w1 > 0)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def robust_background(x: np.ndarray) -> tuple[float, float]:
    """Median and robust sd (1.4826 MAD) of ``x``."""
    v = np.asarray(x, dtype=np.float64).ravel()
    med = float(np.median(v))
    return med, MAD_TO_SD * float(np.median(np.abs(v - med)))


def bimodality(image: np.ndarray, cut: float) -> tuple[float, float]:
    """Ashman's D and the separation in robust sds of the classes either side of ``cut``
    (both 0 when one side is empty)."""
    x = np.asarray(image, dtype=np.float64).ravel()
    lo, hi = x[x <= cut], x[x > cut]
    if lo.size == 0 or hi.size == 0:
        return 0.0, 0.0
    spread = math.sqrt(float(lo.var()) + float(hi.var()))
    d = math.sqrt(2.0) * abs(float(hi.mean()) - float(lo.mean())) / max(spread, 1e-12)
    med_lo, sd_lo = robust_background(lo)
    separation = (float(hi.mean()) - med_lo) / max(sd_lo, 1e-12)
    return d, separation


def choose_threshold(
    image: np.ndarray, rule: ThresholdRule = ThresholdRule(), control: np.ndarray | None = None
) -> Threshold:
    """The threshold for ``image`` by the rule in the module docstring."""
    if rule.fixed is not None:
        return Threshold(float(rule.fixed), "fixed")
    cut = otsu_threshold(image)
    d, separation = bimodality(image, cut)
    if d >= rule.min_ashman_d and separation >= rule.background_k:
        return Threshold(cut, "otsu", d, separation)
    ref = control if control is not None else image
    med, sd = robust_background(ref)
    method: Method = "control" if control is not None else "background"
    return Threshold(med + rule.background_k * sd, method, d, separation)


def binarise(image: np.ndarray, threshold: Threshold | float) -> np.ndarray:
    """Boolean mask of stained pixels (``> threshold``)."""
    t = threshold.value if isinstance(threshold, Threshold) else float(threshold)
    return np.asarray(image) > t
