"""95 % intervals by bootstrap over groups (wells): the uncertainty every figure carries.

Images of one well are not independent (same cells, same focus, same seeding), so intervals
resample *wells* with replacement, never images (a percentile bootstrap with a fixed seed:
the same data give the same interval). Three forms:

- :func:`bootstrap_sums`: a statistic of pooled sums (accuracy = correct / total, balanced
  accuracy from per-class counts, a rate): each well contributes a row of sums, a resample is
  a vector of multiplicities (multinomial), and the statistic is computed from the weighted
  sums of all resamples at once;
- :func:`bootstrap_values`: a statistic of one value per well (the median delay);
- :func:`bootstrap_items`: statistics of items that belong to wells (the images of an
  evaluation: ROC-AUC, ECE, F1...), each a function of per-item weights; a resample weighs
  every image by how often its well was drawn.

A yes/no per well (detected, a false alarm) is a binomial count over wells: :func:`binomial`
gives its exact interval, which does not collapse when every well agrees.

All return an :class:`Interval` (point estimate from the data as it is, percentile bounds),
with ``None`` bounds when there are fewer than two groups.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A figure with its 95 % interval over ``n_groups`` groups (bounds None: too few)."""

    value: float | None
    low: float | None
    high: float | None
    n_groups: int
    level: float = 0.95

    @property
    def width(self) -> float | None:
        return None if self.low is None or self.high is None else self.high - self.low

    def text(self, fmt: str = ".3f", scale: float = 1.0, unit: str = "") -> str:
        """``0.912 [0.850, 0.960]`` (``n/a`` without a value); ``unit`` follows each number."""
        if self.value is None:
            return "n/a"
        v = format(self.value * scale, fmt) + unit
        if self.low is None or self.high is None:
            return f"{v} [n/a]"
        lo, hi = format(self.low * scale, fmt) + unit, format(self.high * scale, fmt) + unit
        return f"{v} [{lo}, {hi}]"


def _bounds(samples: np.ndarray, level: float) -> tuple[float | None, float | None]:
    finite = samples[np.isfinite(samples)]
    if len(finite) == 0:
        return None, None
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(finite, [tail, 100.0 - tail])
    return float(lo), float(hi)


def bootstrap_sums(
    per_group: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """``statistic`` of the column sums of ``per_group`` (groups x sums), with a bootstrap
    interval over groups. ``statistic`` maps an (R, m) array of summed rows to R values
    (NaN where undefined, e.g. no positive image in a resample)."""
    rows = np.asarray(per_group, dtype=float)
    if rows.ndim != 2:
        raise ValueError(f"per_group must be 2-D (groups x sums), got shape {rows.shape}")
    g = rows.shape[0]
    if g == 0:
        return Interval(None, None, None, 0, level)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = float(statistic(rows.sum(axis=0, keepdims=True))[0])
        if g < 2:
            return Interval(_finite(point), None, None, g, level)
        rng = np.random.default_rng(seed)
        weights = rng.multinomial(g, np.full(g, 1.0 / g), size=resamples)
        samples = np.asarray(statistic(weights @ rows), dtype=float)
    lo, hi = _bounds(samples, level)
    return Interval(_finite(point), lo, hi, g, level)


def bootstrap_values(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.median,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """``statistic`` of one value per group, with a bootstrap interval over groups."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return Interval(None, None, None, 0, level)
    point = float(statistic(v))
    if len(v) < 2:
        return Interval(_finite(point), None, None, len(v), level)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), size=(resamples, len(v)))
    samples = np.array([statistic(v[i]) for i in idx], dtype=float)
    lo, hi = _bounds(samples, level)
    return Interval(_finite(point), lo, hi, len(v), level)


def binomial(successes: int, n: int, *, level: float = 0.95) -> Interval:
    """A fraction of ``n`` independent groups (wells) with an exact (Clopper-Pearson)
    interval: for a yes/no per well (detected? false alarm? same call?). The bootstrap
    collapses to a zero-width interval when every well says the same (12 of 12 detected gives
    [1, 1]); the exact interval does not (12 of 12: [0.74, 1])."""
    from scipy.stats import beta

    if n <= 0:
        return Interval(None, None, None, 0, level)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in 0..{n}, got {successes}")
    tail = (1.0 - level) / 2.0
    lo = 0.0 if successes == 0 else float(beta.ppf(tail, successes, n - successes + 1))
    hi = 1.0 if successes == n else float(beta.ppf(1.0 - tail, successes + 1, n - successes))
    return Interval(successes / n, lo, hi, n, level)


def _finite(x: float) -> float | None:
    return x if np.isfinite(x) else None


# -- statistics of summed rows (for bootstrap_sums) --------------------------------------------


def ratio(sums: np.ndarray) -> np.ndarray:
    """Column 0 over column 1 (e.g. correct / images)."""
    return np.asarray(sums[:, 0] / sums[:, 1])


def balanced_accuracy(sums: np.ndarray) -> np.ndarray:
    """From columns (true positives, positives, true negatives, negatives)."""
    return np.asarray(0.5 * (sums[:, 0] / sums[:, 1] + sums[:, 2] / sums[:, 3]))


# -- statistics of items that belong to groups (images of wells) -------------------------------


def bootstrap_items(
    groups: Sequence[Hashable],
    statistics: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
    chunk: int = 200,
) -> dict[str, Interval]:
    """Statistics of items (images, tiles) with bootstrap intervals over their ``groups``.

    A resample draws the groups with replacement (the draw :func:`bootstrap_sums` makes) and
    each item weighs as often as its group was drawn, so a well's images always travel
    together. Each statistic maps an (r, n_items) array of item weights to r values (NaN where
    undefined, e.g. a resample without a positive image); its point estimate is its value at
    weight 1 for every item. All statistics see the same resamples. Resamples are evaluated
    ``chunk`` at a time, so memory stays at ``chunk x n_items`` floats.
    """
    labels = list(groups)
    n = len(labels)
    if n == 0:
        return {name: Interval(None, None, None, 0, level) for name in statistics}
    _, index = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    g = int(index.max()) + 1
    with np.errstate(invalid="ignore", divide="ignore"):
        points = {
            name: _finite(float(np.asarray(stat(np.ones((1, n))), dtype=float)[0]))
            for name, stat in statistics.items()
        }
        if g < 2:
            return {name: Interval(points[name], None, None, g, level) for name in statistics}
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(g, np.full(g, 1.0 / g), size=resamples).astype(float)
        samples: dict[str, list[np.ndarray]] = {name: [] for name in statistics}
        for start in range(0, resamples, chunk):
            weights = draws[start : start + chunk][:, index]
            for name, stat in statistics.items():
                samples[name].append(np.asarray(stat(weights), dtype=float))
    out = {}
    for name in statistics:
        lo, hi = _bounds(np.concatenate(samples[name]), level)
        out[name] = Interval(points[name], lo, hi, g, level)
    return out
