"""Tiles to images, and fields to one probability per well and time point, with uncertainty.

Pure functions, no database. The rule that an image's probability is the mean of its tiles'
probabilities is written once, in :func:`image_probabilities` (many images at once: the
trainer's evaluation) and :func:`score_image` (one image with its tile spread: the monitor,
the onset evaluator). :func:`group_timepoints` sorts a well's images into time points,
:func:`aggregate_fields` turns the fields of one time point into a :class:`WellPoint`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

AggregateMethod = Literal["mean", "median"]


def image_probabilities(
    tile_probs: ArrayLike, image: ArrayLike | None = None, n_images: int | None = None
) -> np.ndarray:
    """Each image's probability: the mean of its tiles' probabilities.

    ``tile_probs`` is (N,) (one class) or (N, C) (every class); ``image`` gives each tile's
    image index (default: all tiles belong to one image); ``n_images`` defaults to the
    largest index + 1. Returns (n_images,) or (n_images, C) float64; an image without tiles
    gets NaN.
    """
    p = np.asarray(tile_probs, dtype=np.float64)
    idx = np.zeros(len(p), dtype=np.int64) if image is None else np.asarray(image, np.int64)
    if len(idx) != len(p):
        raise ValueError(f"{len(p)} tile probabilities but {len(idx)} image indices")
    n = n_images if n_images is not None else (int(idx.max()) + 1 if len(idx) else 1)
    sums = np.zeros((n, *p.shape[1:]), dtype=np.float64)
    np.add.at(sums, idx, p)
    counts = np.bincount(idx, minlength=n).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts.reshape(-1, *([1] * (p.ndim - 1)))


class ImageScore(NamedTuple):
    """One image as the monitor records it."""

    probability: float
    """Mean of the tiles' positive-class probabilities (NaN without tiles)."""
    tile_sd: float
    """Spread across the image's tiles (population sd; NaN without tiles)."""
    n_tiles: int


def score_image(tile_probs: ArrayLike) -> ImageScore:
    """The probability of one image from its tiles' positive-class probabilities (N,)."""
    p = np.asarray(tile_probs, dtype=np.float64).reshape(-1)
    probability = float(image_probabilities(p)[0])
    return ImageScore(probability, float(p.std()) if p.size else float("nan"), int(p.size))


@dataclass(frozen=True)
class FieldObservation:
    """One image (field) of a well at one time point, as the model scored it."""

    field: int | None
    probability: float
    tile_sd: float | None = None
    n_tiles: int | None = None
    timepoint: int | None = None
    time_s: float | None = None
    channel: int | None = None
    z: int | None = None


@dataclass(frozen=True)
class WellPoint:
    """A well at one time point.

    ``sd`` is the spread across fields (with one field: across that field's tiles);
    ``sem`` the standard error of ``probability`` (tiles of one field are correlated, so the
    one-field value is optimistic).
    """

    probability: float
    sd: float | None
    sem: float | None
    n_fields: int
    n_tiles: int


@dataclass(frozen=True)
class TimepointGroup:
    """The fields of one well at one time point; ``key`` orders groups in time."""

    key: float
    timepoint: int | None
    time_s: float | None
    fields: tuple[FieldObservation, ...]


def aggregate_fields(
    observations: Sequence[FieldObservation], method: AggregateMethod = "mean"
) -> WellPoint:
    """Combine the fields of one time point.

    ``mean`` is the plain mean of field probabilities; ``median`` resists a single outlier
    field (debris, a bubble, an out-of-focus image). A missing field just means fewer
    observations. Raises ValueError when there is none.
    """
    probs = [float(o.probability) for o in observations if math.isfinite(o.probability)]
    if not probs:
        raise ValueError("no field with a finite probability to aggregate")
    n = len(probs)
    n_tiles = sum(int(o.n_tiles or 0) for o in observations)
    if method == "median":
        centre = statistics.median(probs)
    elif method == "mean":
        centre = statistics.fmean(probs)
    else:
        raise ValueError(f"aggregate method {method!r} is not 'mean' or 'median'")
    if n >= 2:
        spread = statistics.stdev(probs)
        # the median's standard error is ~1.25x the mean's for normal data
        factor = 1.2533 if method == "median" else 1.0
        sd: float | None = spread
        sem: float | None = factor * spread / math.sqrt(n)
    else:
        only = observations[0]
        sd = only.tile_sd
        sem = (
            only.tile_sd / math.sqrt(only.n_tiles)
            if only.tile_sd is not None and only.n_tiles
            else None
        )
    return WellPoint(probability=centre, sd=sd, sem=sem, n_fields=n, n_tiles=n_tiles)


def group_timepoints(
    observations: Iterable[FieldObservation], *, time_tolerance_s: float = 600.0
) -> list[TimepointGroup]:
    """Group field observations into time points, in time order.

    Observations with a ``timepoint`` index group by it; those without group by ``time_s``
    (fields taken within ``time_tolerance_s`` of the group's first field belong together).
    Observations with neither are dropped. When one field (of one channel and plane) was
    imaged twice at the same time point (a rewrite that was not superseded), the later record
    wins; images without a field number are all kept.
    """
    by_index: dict[int, list[FieldObservation]] = {}
    by_time: list[FieldObservation] = []
    for o in observations:
        if o.timepoint is not None:
            by_index.setdefault(o.timepoint, []).append(o)
        elif o.time_s is not None:
            by_time.append(o)

    groups: list[TimepointGroup] = []
    for tp, obs in by_index.items():
        times = [o.time_s for o in obs if o.time_s is not None]
        t = min(times) if times else None
        groups.append(
            TimepointGroup(
                key=float(t) if t is not None else float(tp),
                timepoint=tp,
                time_s=t,
                fields=_one_per_field(obs),
            )
        )
    by_time.sort(key=lambda o: float(o.time_s or 0.0))
    current: list[FieldObservation] = []
    for o in by_time:
        if current and float(o.time_s or 0.0) - float(current[0].time_s or 0.0) > time_tolerance_s:
            groups.append(_time_group(current))
            current = []
        current.append(o)
    if current:
        groups.append(_time_group(current))
    if all(g.timepoint is not None for g in groups):
        groups.sort(key=lambda g: (g.timepoint or 0, g.key))
    else:
        groups.sort(key=lambda g: g.key)
    return groups


def _time_group(obs: list[FieldObservation]) -> TimepointGroup:
    t = float(obs[0].time_s or 0.0)
    return TimepointGroup(key=t, timepoint=None, time_s=t, fields=_one_per_field(obs))


def _one_per_field(obs: list[FieldObservation]) -> tuple[FieldObservation, ...]:
    """One observation per (field, channel, plane), the later one winning; an image whose
    field nobody stated is its own observation (never merged with another)."""
    seen: dict[object, FieldObservation] = {}
    for i, o in enumerate(obs):
        key = ("anon", i) if o.field is None else (o.field, o.channel, o.z)
        seen[key] = o
    return tuple(seen.values())
