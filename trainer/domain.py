"""Fitting a model's training-domain description at export (:mod:`stemwatch.core.domain`).

The images come from the training run itself: the checkpoint records its data (a manifest or
a class-folder tree) and its grouped split. The Gaussians are fitted on the tiles of the
**training** part; the threshold is calibrated on the images of the **validation and test**
parts, which the network was not fitted on (as the monitor's images will be), cross-fitted by
experiment when there are several (:func:`_held_out_distances`). Another set can be given
instead (``data``); it is then split by well, two thirds to fit and one third to calibrate.
Images are prepared exactly as the monitor prepares them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stemwatch.core.domain import (
    DEFAULT_COMPONENTS,
    DEFAULT_QUANTILE,
    MARGIN,
    DomainDescription,
    FeatureGaussian,
    calibrate_threshold,
    fit_gaussian,
    image_distance,
    tile_statistics,
)
from stemwatch.core.errors import StemwatchError
from stemwatch.core.imaging import NormalisationRecipe, TilingSpec, prepare, read_image
from trainer.data import Sample, load_samples

log = logging.getLogger(__name__)

MAX_FIT_IMAGES = 400
MAX_CALIBRATION_IMAGES = 400
MIN_FIT_TILES = 20
MIN_CALIBRATION_IMAGES = 8
_GROUP_BY = "well"

Features = Callable[[np.ndarray], np.ndarray]
"""Tiles (N, C, S, S) float32 -> penultimate features (N, D)."""


class DomainError(StemwatchError):
    """The training-domain images cannot be found or read."""


class TooFewImagesError(DomainError):
    """Too few images to fit and calibrate a description (the export goes on without one)."""


@dataclass(frozen=True)
class DomainImages:
    """Images to fit the description on and held-out images to calibrate its threshold."""

    fit: list[Sample]
    calibrate: list[Sample]
    source: str


def _resolve(data: str | Path, checkpoint: Path) -> Path | None:
    p = Path(data)
    candidates = [p] if p.is_absolute() else [p, checkpoint.parent / p]
    return next((c for c in candidates if c.exists()), None)


def _load(path: Path, classes: Sequence[str]) -> list[Sample]:
    if path.is_dir():
        return load_samples(manifest=None, folder=path, classes=classes)
    return load_samples(manifest=path, folder=None, classes=classes)


def _spread(samples: list[Sample], limit: int) -> list[Sample]:
    """At most ``limit`` samples, evenly spread over the list (which is ordered by group)."""
    if len(samples) <= limit:
        return samples
    keep = np.linspace(0, len(samples) - 1, limit).round().astype(int)
    return [samples[i] for i in keep]


def _split_by_group(samples: list[Sample], seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """Two thirds of the groups to fit, one third to calibrate (at least one group each)."""
    groups = sorted({s.group(_GROUP_BY) for s in samples})
    if len(groups) < 2:
        raise DomainError(
            f"the domain images form {len(groups)} well group(s); the threshold must be "
            "calibrated on wells the fit did not see: give images of at least two wells"
        )
    order = np.random.default_rng(seed).permutation(len(groups))
    n_cal = max(1, len(groups) // 3)
    held = {groups[i] for i in order[:n_cal]}
    fit = [s for s in samples if s.group(_GROUP_BY) not in held]
    cal = [s for s in samples if s.group(_GROUP_BY) in held]
    return fit, cal


def domain_images(
    checkpoint: Path,
    training: dict[str, Any],
    classes: Sequence[str],
    *,
    data: str | Path | None = None,
) -> DomainImages | None:
    """The images to describe the domain with: ``data`` if given, else the checkpoint's own
    training data and split. None when the checkpoint names no training data."""
    if data is not None:
        path = Path(data)
        if not path.exists():
            raise DomainError(
                f"{path}: domain images not found; pass a manifest CSV or a class-folder tree "
                "of training-domain images to --domain-data"
            )
        fit, cal = _split_by_group(_load(path, classes))
        return DomainImages(fit, cal, f"{path} (split by well: 2/3 fit, 1/3 calibrate)")
    recorded = training.get("data")
    if not recorded:
        return None
    found = _resolve(recorded, checkpoint)
    if found is None:
        raise DomainError(
            f"{checkpoint}: its training data {recorded!r} is not found (from "
            f"{Path.cwd()}); the domain description is fitted on it. Run the export where "
            "the data is, pass --domain-data MANIFEST_OR_FOLDER, or --no-domain to export "
            "without a domain check"
        )
    samples = _load(found, classes)
    split = training.get("split") or {}
    group_by = split.get("group_by", _GROUP_BY)
    train = set((split.get("train") or {}).get("groups") or [])
    held = set((split.get("val") or {}).get("groups") or []) | set(
        (split.get("test") or {}).get("groups") or []
    )
    fit = [s for s in samples if s.group(group_by) in train]
    cal = [s for s in samples if s.group(group_by) in held]
    if not fit or not cal:
        fit, cal = _split_by_group(samples)
        return DomainImages(fit, cal, f"{found} (no recorded split: by well, 2/3 fit)")
    return DomainImages(
        fit, cal, f"{found} (training part to fit; validation and test to calibrate)"
    )


@dataclass
class _ImageTiles:
    """One image's tile statistics and features, and the experiment it belongs to."""

    statistics: np.ndarray
    features: np.ndarray | None
    experiment: str


def _describe_images(
    samples: Sequence[Sample],
    features: Features | None,
    tiling: TilingSpec,
    normalisation: NormalisationRecipe,
    in_channels: int,
) -> list[_ImageTiles]:
    out = []
    for s in samples:
        tiles = prepare(read_image(s.path).pixels, normalisation, tiling).data
        if in_channels != 1:
            tiles = np.repeat(tiles, in_channels, axis=1)
        out.append(
            _ImageTiles(
                tile_statistics(tiles),
                None if features is None else features(tiles),
                s.experiment or s.plate or "-",
            )
        )
    return out


def _fit(
    images: Sequence[_ImageTiles], components: int
) -> tuple[FeatureGaussian, FeatureGaussian | None]:
    stats = fit_gaussian(
        np.concatenate([i.statistics for i in images]),
        max_components=components,
        transform="none",
    )
    if images[0].features is None:
        return stats, None
    feats = np.concatenate([i.features for i in images if i.features is not None])
    return stats, fit_gaussian(feats, max_components=components)


def _distances(
    image: _ImageTiles, stats: FeatureGaussian, feats: FeatureGaussian | None
) -> tuple[float, float]:
    d_stat = image_distance(stats.distances(image.statistics))
    if feats is None or image.features is None:
        return d_stat, float("nan")
    return d_stat, image_distance(feats.distances(image.features))


def _held_out_distances(
    fit: Sequence[_ImageTiles],
    cal: Sequence[_ImageTiles],
    components: int,
    final: tuple[FeatureGaussian, FeatureGaussian | None],
) -> tuple[np.ndarray, str]:
    """(n_cal, 2) distances of the calibration images, and how they were held out.

    Cross-fitted by experiment when the images come from at least two: each experiment's
    calibration images are scored by Gaussians fitted on the other experiments' training
    images, so the threshold covers the spread between experiments (a new plate, a new
    seeding) and not only between wells of the experiments it was fitted on. Else (one
    experiment) by the final Gaussians, fitted on other wells.
    """
    experiments = sorted({i.experiment for i in cal})
    crossed = len(experiments) >= 2 and all(
        any(f.experiment != e for f in fit) for e in experiments
    )
    if not crossed:
        return np.array([_distances(i, *final) for i in cal]), "other wells"
    rows: list[tuple[float, float]] = []
    for e in experiments:
        gaussians = _fit([f for f in fit if f.experiment != e], components)
        rows += [_distances(i, *gaussians) for i in cal if i.experiment == e]
    return np.array(rows), f"other experiments (cross-fitted over {len(experiments)})"


def fit_domain(
    images: DomainImages,
    features: Features | None,
    tiling: TilingSpec,
    normalisation: NormalisationRecipe,
    *,
    in_channels: int = 1,
    output_name: str | None,
    components: int = DEFAULT_COMPONENTS,
    quantile: float = DEFAULT_QUANTILE,
) -> DomainDescription:
    """Fit the Gaussians on the tiles of ``images.fit`` and calibrate the threshold on the
    held-out ``images.calibrate`` (each at most a few hundred images, spread over the set).
    ``features`` (tiles -> penultimate features) None: a statistics-only description."""
    fit_samples = _spread(images.fit, MAX_FIT_IMAGES)
    cal_samples = _spread(images.calibrate, MAX_CALIBRATION_IMAGES)
    fit = _describe_images(fit_samples, features, tiling, normalisation, in_channels)
    n_tiles = sum(len(i.statistics) for i in fit)
    if n_tiles < MIN_FIT_TILES or len(cal_samples) < MIN_CALIBRATION_IMAGES:
        raise TooFewImagesError(
            f"too few images to describe the training domain: {n_tiles} tiles to fit "
            f"(need {MIN_FIT_TILES}), {len(cal_samples)} held-out images to calibrate (need "
            f"{MIN_CALIBRATION_IMAGES}); give more images with --domain-data"
        )
    cal = _describe_images(cal_samples, features, tiling, normalisation, in_channels)
    final = _fit(fit, components)
    held, how = _held_out_distances(fit, cal, components, final)
    stats_scale = float(np.median(held[:, 0]))
    relative = held[:, 0] / stats_scale
    feats_scale = 1.0
    if final[1] is not None:
        feats_scale = float(np.median(held[:, 1]))
        relative = np.maximum(relative, held[:, 1] / feats_scale)
    threshold = calibrate_threshold(relative, quantile, margin=MARGIN)
    q = np.quantile(relative, [0.5, 0.9, 0.99])
    calibration = {
        "source": images.source,
        "held_out_by": how,
        "n_fit_images": len(fit_samples),
        "n_fit_tiles": int(n_tiles),
        "n_calibration_images": len(cal_samples),
        "n_calibration_groups": len({s.group(_GROUP_BY) for s in cal_samples}),
        "calibration_distance": {
            "median": round(float(q[0]), 4),
            "p90": round(float(q[1]), 4),
            "p99": round(float(q[2]), 4),
            "max": round(float(relative.max()), 4),
        },
        "margin": MARGIN,
        "calibration_flagged": int((relative > threshold).sum()),
    }
    log.info(
        "domain: fitted on %d tiles of %d images; threshold %.3f from %d held-out images "
        "(held out by %s; median %.3f, max %.3f)",
        n_tiles,
        len(fit_samples),
        threshold,
        len(cal_samples),
        how,
        q[0],
        relative.max(),
    )
    return DomainDescription(
        statistics=final[0],
        statistics_scale=stats_scale,
        features=final[1],
        features_scale=feats_scale,
        output_name=output_name if final[1] is not None else None,
        threshold=threshold,
        quantile=quantile,
        calibration=calibration,
    )
