"""Measuring the domain check as the monitor applies it: which frames it flags, and why.

:func:`score_frame` treats a frame exactly as the daemon does: the image-quality check first
(:func:`stemwatch.core.quality.check_quality`), then the model's preprocessing, one inference
and the domain score (:meth:`monitor.inference.LoadedModel.domain_score`). :func:`evaluate_set`
gives a set's flagged share with two 95 % intervals: Wilson's over images, and a bootstrap
over groups (the images of one well are not independent, so the group bootstrap is the honest
one where a set has several images per group).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monitor.inference import LoadedModel
from stemwatch.core.imaging import prepare
from stemwatch.core.quality import check_quality
from stemwatch.evaluation.domain_sets import Frame


@dataclass(frozen=True)
class FrameResult:
    """One frame through the monitor's checks."""

    name: str
    group: str
    quality: str | None  # why it was not analysed
    score: float | None  # domain score (above 1: out of the domain)
    by: str  # what flagged it: quality, statistics, features, or ""
    probability: float | None
    seconds: float  # domain scoring only (statistics and distances)
    tiles_above: int = 0  # tiles whose probability is above 0.5
    n_tiles: int = 0

    @property
    def flagged(self) -> bool:
        return self.quality is not None or (self.score is not None and self.score > 1.0)


def score_frame(model: LoadedModel, frame: Frame) -> FrameResult:
    """The quality check, then inference and the domain score, as the daemon does them."""
    issue = check_quality(frame.pixels, bit_depth=frame.bit_depth)
    if issue is not None:
        return FrameResult(frame.name, frame.group, str(issue), None, "quality", None, 0.0)
    meta = model.metadata
    tiles = prepare(frame.pixels, meta.normalisation, meta.tiling)
    out = model.infer(tiles.data, cam=False)
    t0 = time.perf_counter()
    score = model.domain_score(tiles.data, out.features)
    seconds = time.perf_counter() - t0
    probability = float(np.mean(out.probabilities))
    above = (int(np.sum(out.probabilities > 0.5)), len(out.probabilities))
    if score is None or model.domain is None:
        return FrameResult(frame.name, frame.group, None, None, "", probability, seconds, *above)
    parts = model.domain.distances(tiles.data, out.features)
    names = ("statistics", "features")
    by = "+".join(n for n, d in zip(names, parts, strict=False) if d > model.domain.threshold)
    return FrameResult(frame.name, frame.group, None, score.score, by, probability, seconds, *above)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's 95 % interval for k successes in n trials."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def group_bootstrap(
    flags: Sequence[bool], groups: Sequence[str], *, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile interval of the flagged share, resampling whole groups."""
    by_group: dict[str, list[bool]] = {}
    for f, g in zip(flags, groups, strict=True):
        by_group.setdefault(g, []).append(f)
    k = np.array([sum(v) for v in by_group.values()], dtype=float)
    n = np.array([len(v) for v in by_group.values()], dtype=float)
    if len(k) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(k), size=(n_boot, len(k)))
    shares = k[idx].sum(axis=1) / n[idx].sum(axis=1)
    lo, hi = np.quantile(shares, [0.025, 0.975])
    return (float(lo), float(hi))


@dataclass(frozen=True)
class SetResult:
    """A set's flagged share with its intervals, and what flagged its frames."""

    name: str
    results: list[FrameResult]

    @property
    def n(self) -> int:
        return len(self.results)

    @property
    def k(self) -> int:
        return sum(r.flagged for r in self.results)

    @property
    def share(self) -> float:
        return self.k / self.n if self.n else float("nan")

    @property
    def n_groups(self) -> int:
        return len({r.group for r in self.results})

    def intervals(self) -> tuple[tuple[float, float], tuple[float, float]]:
        flags = [r.flagged for r in self.results]
        return wilson(self.k, self.n), group_bootstrap(flags, [r.group for r in self.results])

    def by(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.results:
            if r.flagged:
                counts[r.by or "?"] = counts.get(r.by or "?", 0) + 1
        return counts

    def line(self) -> str:
        (wl, wh), (bl, bh) = self.intervals()
        boot = (
            f", groups {100 * bl:.1f}-{100 * bh:.1f} %"
            if self.n_groups >= 2 and self.n_groups < self.n
            else ""
        )
        scores = [r.score for r in self.results if r.score is not None]
        median = f", median score {np.median(scores):.2f}" if scores else ""
        why = ", ".join(f"{k} {v}" for k, v in sorted(self.by().items()))
        return (
            f"{self.name:<28} {self.k:>4}/{self.n:<4} flagged = {100 * self.share:5.1f} % "
            f"(95 % CI images {100 * wl:.1f}-{100 * wh:.1f} %{boot}){median}"
            + (f"; by {why}" if why else "")
        )


def evaluate_set(model: LoadedModel, name: str, frames: Sequence[Frame]) -> SetResult:
    return SetResult(name, [score_frame(model, f) for f in frames])
