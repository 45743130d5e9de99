"""Texture statistics of an image crop, for telling one image source from another.

Every feature is computed on the crop after intensity normalisation (median subtracted,
divided by the standard deviation of the crop clipped to its 1st-99th percentiles), so the
trivial whole-image statistics (exposure, offset, gain) are not what separates two sources:
what is left is spatial structure and the shape of the intensity distribution.

Two sets: ``basic`` (18 features: local standard deviation at three scales, gradient
percentiles, radial power-spectrum shape; the statistics issue 9 was measured with) and
``full`` (68: ``basic`` plus the flattest-area texture, distribution shape, rotation-invariant
uniform local binary patterns at radius 1 and 2, grey-level co-occurrence at 1, 4 and 12 px,
dark and bright blob densities at two scales, neighbour correlation and orientation
coherence). All pure numpy / scipy.ndimage.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

FEATURE_SETS = ("basic", "full")
LSTD_WINDOWS = (3, 9, 27)
"""Window sides (px) of the local standard deviation."""
PS_EDGES = tuple(float(f) for f in np.geomspace(0.008, 0.5, 9))
"""Radial frequency band edges (cycles/px) of the power-spectrum shape."""
GLCM_LEVELS = 16
GLCM_DISTANCES = (1, 4, 12)
LBP_POINTS = 8
LBP_RADII = (1, 2)


def normalise_crop(crop: np.ndarray) -> np.ndarray:
    """``(crop - median) / sd``, sd of the crop clipped to its 1st-99th percentiles."""
    a = np.asarray(crop, dtype=np.float32)
    lo, med, hi = np.percentile(a, [1, 50, 99])
    sd = float(np.clip(a, lo, hi).std())
    return (a - np.float32(med)) / np.float32(max(sd, 1e-6))


def feature_names(feature_set: str = "full") -> list[str]:
    """Names of the features :func:`texture_features` returns, in order."""
    _check_set(feature_set)
    names = [f"lstd{w}_{s}" for w in LSTD_WINDOWS for s in ("median", "p90")]
    names += [f"grad_p{q}" for q in (10, 50, 90, 99)]
    names += [f"ps_{lo:.3f}-{hi:.3f}" for lo, hi in itertools.pairwise(PS_EDGES)]
    if feature_set == "basic":
        return names
    names += [f"lstd{w}_p10" for w in LSTD_WINDOWS]
    names += ["skew", "kurtosis", "z_p1", "z_p5", "z_p95", "z_p99", "frac_below_-3", "frac_above_3"]
    for r in LBP_RADII:
        names += [f"lbp{r}_{k}" for k in range(LBP_POINTS + 2)]
    for d in GLCM_DISTANCES:
        names += [f"glcm{d}_{m}" for m in ("contrast", "homogeneity", "correlation", "energy")]
    names += ["dark_blobs_s1.5", "bright_blobs_s1.5", "dark_blobs_s4", "bright_blobs_s4"]
    names += ["neighbour_corr1", "neighbour_corr2", "coherence"]
    return names


def feature_family(name: str) -> str:
    """The family a feature belongs to (``lbp1``, ``glcm4``, ``ps``, ``grad``...)."""
    head = name.split("_", maxsplit=1)[0]
    if head.startswith("lstd") and name.endswith("_p10"):
        return "flat-area texture"
    if head.startswith("lstd"):
        return "local sd"
    if head in ("skew", "kurtosis", "z", "frac"):
        return "distribution"
    if head in ("dark", "bright"):
        return "blobs"
    if head in ("neighbour", "coherence"):
        return "correlation"
    return head


def texture_features(crop: np.ndarray, feature_set: str = "full") -> np.ndarray:
    """The features of one 2-D crop (float64 vector, names from :func:`feature_names`)."""
    _check_set(feature_set)
    z = normalise_crop(crop)
    lstd = [_local_std(z, w) for w in LSTD_WINDOWS]
    out: list[float] = []
    for m in lstd:
        out += [float(np.median(m)), float(np.percentile(m, 90))]
    gy = ndi.sobel(z, axis=0) / 8.0
    gx = ndi.sobel(z, axis=1) / 8.0
    grad = np.hypot(gx, gy)
    out += [float(v) for v in np.percentile(grad, [10, 50, 90, 99])]
    out += list(_spectrum_shape(z))
    if feature_set == "basic":
        return np.asarray(out, dtype=np.float64)
    out += [float(np.percentile(m, 10)) for m in lstd]
    out += _distribution(z)
    for r in LBP_RADII:
        out += list(lbp_histogram(z, r))
    q = _quantise(z, GLCM_LEVELS)
    for d in GLCM_DISTANCES:
        out += list(glcm_features(q, d, GLCM_LEVELS))
    for sigma in (1.5, 4.0):
        out += _blob_density(z, sigma)
    out += [_neighbour_corr(z, 1), _neighbour_corr(z, 2), _coherence(gx, gy)]
    return np.asarray(out, dtype=np.float64)


def _check_set(feature_set: str) -> None:
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"feature set {feature_set!r} is unknown; use one of {FEATURE_SETS}")


def _local_std(z: np.ndarray, w: int) -> np.ndarray:
    m = ndi.uniform_filter(z, w, mode="reflect")
    m2 = ndi.uniform_filter(z * z, w, mode="reflect")
    return np.sqrt(np.maximum(m2 - m * m, 0.0))


@lru_cache(maxsize=8)
def _spectrum_masks(h: int, w: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    win = (np.hanning(h)[:, None] * np.hanning(w)[None, :]).astype(np.float32)
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    masks = tuple((f >= lo) & (f < hi) for lo, hi in itertools.pairwise(PS_EDGES))
    return win, masks


def _spectrum_shape(z: np.ndarray) -> np.ndarray:
    """Log mean power in radial bands (Hann window), mean removed: the spectrum's shape."""
    win, masks = _spectrum_masks(*z.shape)
    power = np.abs(np.fft.rfft2((z - z.mean()) * win)) ** 2
    bands = np.log(np.array([power[m].mean() for m in masks]) + 1e-12)
    return bands - bands.mean()


def _distribution(z: np.ndarray) -> list[float]:
    zc = z - z.mean()
    sd = max(float(zc.std()), 1e-9)
    skew = float((zc**3).mean() / sd**3)
    kurt = float((zc**4).mean() / sd**4 - 3.0)
    p = np.percentile(z, [1, 5, 95, 99])
    return [skew, kurt, *(float(v) for v in p), float((z < -3).mean()), float((z > 3).mean())]


def _shifted(zp: np.ndarray, pad: int, dy: float, dx: float, shape: tuple[int, int]) -> np.ndarray:
    """``z`` sampled at (y + dy, x + dx) by bilinear interpolation, from the padded ``zp``."""
    h, w = shape
    y0, x0 = math.floor(dy), math.floor(dx)
    fy, fx = dy - y0, dx - x0

    def at(oy: int, ox: int) -> np.ndarray:
        return zp[pad + oy : pad + oy + h, pad + ox : pad + ox + w]

    out = at(y0, x0) * ((1 - fy) * (1 - fx))
    if fx > 1e-9:
        out = out + at(y0, x0 + 1) * ((1 - fy) * fx)
    if fy > 1e-9:
        out = out + at(y0 + 1, x0) * (fy * (1 - fx))
    if fx > 1e-9 and fy > 1e-9:
        out = out + at(y0 + 1, x0 + 1) * (fy * fx)
    return out


def lbp_histogram(z: np.ndarray, radius: int, points: int = LBP_POINTS) -> np.ndarray:
    """Rotation-invariant uniform local binary patterns (Ojala et al. 2002): ``points``
    neighbours on a circle of ``radius`` px (bilinear), histogram of ``points + 2`` codes."""
    pad = radius + 1
    zp = np.pad(z, pad, mode="reflect")
    bits = []
    for p in range(points):
        ang = 2 * math.pi * p / points
        dy, dx = -radius * math.sin(ang), radius * math.cos(ang)
        dy, dx = round(dy, 6), round(dx, 6)
        bits.append(_shifted(zp, pad, dy, dx, z.shape) >= z)
    b = np.stack(bits).astype(np.int8)
    transitions = np.abs(np.diff(np.concatenate([b, b[:1]]), axis=0)).sum(axis=0)
    ones = b.sum(axis=0)
    code = np.where(transitions <= 2, ones, points + 1)
    hist = np.bincount(code.ravel(), minlength=points + 2).astype(np.float64)
    return hist / hist.sum()


def _quantise(z: np.ndarray, levels: int) -> np.ndarray:
    """Grey levels by the crop's own quantiles: a uniform marginal, only co-occurrence left."""
    edges = np.quantile(z, np.linspace(0, 1, levels + 1)[1:-1])
    return np.searchsorted(edges, z, side="right").astype(np.int64)


def glcm_features(q: np.ndarray, d: int, levels: int) -> np.ndarray:
    """Grey-level co-occurrence (Haralick et al. 1973) at distance ``d``, averaged over the
    four directions, symmetric: contrast, homogeneity, correlation, energy (ASM)."""
    p = np.zeros(levels * levels, np.float64)
    h, w = q.shape
    for dy, dx in ((0, d), (d, 0), (d, d), (d, -d)):
        a = q[0 : h - dy, max(0, -dx) : w - max(0, dx)]
        b = q[dy:h, max(0, dx) : w - max(0, -dx)]
        pair = (a * levels + b).ravel()
        p += np.bincount(pair, minlength=levels * levels)
        p += np.bincount((b * levels + a).ravel(), minlength=levels * levels)
    pm = (p / p.sum()).reshape(levels, levels)
    i, j = np.mgrid[0:levels, 0:levels]
    contrast = float((pm * (i - j) ** 2).sum())
    homog = float((pm / (1.0 + (i - j) ** 2)).sum())
    mu = float((pm * i).sum())
    var = float((pm * (i - mu) ** 2).sum())
    corr = float((pm * (i - mu) * (j - mu)).sum() / max(var, 1e-12))
    energy = float((pm**2).sum())
    return np.array([contrast, homog, corr, energy])


def _blob_density(z: np.ndarray, sigma: float) -> list[float]:
    """Dark and bright blobs per 10,000 px: local extrema of the scale-normalised
    Laplacian of Gaussian beyond 1 (in units of the normalised crop)."""
    log = ndi.gaussian_laplace(z, sigma) * np.float32(sigma * sigma)
    size = 2 * math.ceil(sigma) + 1
    area = z.size / 10_000.0
    dark = (log == ndi.maximum_filter(log, size)) & (log > 1.0)
    bright = (log == ndi.minimum_filter(log, size)) & (log < -1.0)
    return [float(dark.sum()) / area, float(bright.sum()) / area]


def _neighbour_corr(z: np.ndarray, lag: int) -> float:
    zc = z - z.mean()
    var = max(float((zc * zc).mean()), 1e-12)
    h = float((zc[:, :-lag] * zc[:, lag:]).mean())
    v = float((zc[:-lag] * zc[lag:]).mean())
    return 0.5 * (h + v) / var


def _coherence(gx: np.ndarray, gy: np.ndarray) -> float:
    """Mean orientation coherence of the structure tensor (Gaussian window sigma 4 px)."""
    jxx = ndi.gaussian_filter(gx * gx, 4.0)
    jyy = ndi.gaussian_filter(gy * gy, 4.0)
    jxy = ndi.gaussian_filter(gx * gy, 4.0)
    coh = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (jxx + jyy + 1e-9)
    return float(coh.mean())
