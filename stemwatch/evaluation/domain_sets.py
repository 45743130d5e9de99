"""Image sets the domain check is measured on: in-domain, and what must be flagged.

Each set is a list of :class:`Frame` (pixels as a microscope would deliver them, a name, and a
group: images of one group are not independent, e.g. the fields of one well). The frames are
built in memory from the synthetic microscope (:mod:`stemwatch.synth`) or read from a folder:

- :func:`defocused`: in-domain frames blurred by a Gaussian (a focus lost by tens of µm);
- :func:`coarser_pixels`: the same specimen imaged with ``factor`` times the pixel size
  (rendered ``factor`` times larger, then binned: what a lower-magnification objective or
  camera binning delivers);
- :func:`fluorescence`: stand-ins for fluorescence micrographs of stem cell colonies (nuclear
  or cytoplasmic stain: bright cells on a dark, noisy background). Synthetic: the generator
  has no fluorescence mode, so these are drawn here; real fluorescence would be a better test;
- :func:`bad_frames`: blank, black, saturated, all-NaN frames and empty but lit fields.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from stemwatch.core.imaging import IMAGE_SUFFIXES, read_image
from stemwatch.synth.plate import PlatePlan
from trainer.data import read_manifest


@dataclass(frozen=True)
class Frame:
    """One image to score: its pixels, a name, and the group it belongs to."""

    name: str
    pixels: np.ndarray
    group: str
    bit_depth: int | None = None


def from_manifest(
    manifest: Path,
    *,
    classes: Sequence[str] = ("undifferentiated", "differentiated"),
    limit: int | None = None,
) -> list[Frame]:
    """The images of a labelled manifest, grouped by experiment and well."""
    rows = read_manifest(manifest, classes)
    if limit is not None and len(rows) > limit:
        keep = np.linspace(0, len(rows) - 1, limit).round().astype(int)
        rows = [rows[i] for i in keep]
    out = []
    for r in rows:
        image = read_image(r.path)
        group = r.group("well")
        out.append(Frame(r.path.name, image.pixels, group, image.bit_depth))
    return out


def from_folder(folder: Path) -> list[Frame]:
    """Every image file of ``folder`` (not recursive), each its own group."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    out = []
    for p in files:
        image = read_image(p)
        out.append(Frame(p.name, image.pixels, p.name, image.bit_depth))
    return out


def defocused(frames: Iterable[Frame], sigma_px: float) -> list[Frame]:
    """``frames`` blurred by a Gaussian of ``sigma_px`` (in the frames' own pixels)."""
    out = []
    for f in frames:
        blurred = ndi.gaussian_filter(f.pixels.astype(np.float32), sigma_px, mode="reflect")
        if f.pixels.dtype.kind in "ui":
            blurred = np.rint(blurred).astype(f.pixels.dtype)
        out.append(Frame(f"{f.name}~blur{sigma_px:g}", blurred, f.group, f.bit_depth))
    return out


def bin_pixels(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Sum-free binning: the mean of ``factor`` x ``factor`` blocks, in the input's dtype."""
    h, w = (pixels.shape[0] // factor) * factor, (pixels.shape[1] // factor) * factor
    blocks = pixels[:h, :w].astype(np.float64).reshape(h // factor, factor, w // factor, factor)
    mean = blocks.mean(axis=(1, 3))
    if pixels.dtype.kind in "ui":
        return np.rint(mean).astype(pixels.dtype)
    return mean.astype(np.float32)


def coarser_pixels(
    plan: PlatePlan, cells: Sequence[tuple[str, int, int]], factor: int
) -> list[Frame]:
    """Fields of ``plan`` (well, field, time-point index) imaged at ``factor`` times its pixel
    size. ``plan`` must be laid out at ``factor`` times the wanted image side."""
    out = []
    for well, fld, t in cells:
        big = plan.render(well, fld, t)
        out.append(
            Frame(
                f"{plan.plate}_{well}_f{fld + 1}_t{t}~x{factor}px",
                bin_pixels(big, factor),
                f"{plan.plate}/{well}",
                plan.bit_depth if plan.bit_depth == 8 else 12,
            )
        )
    return out


def _camera(
    signal: np.ndarray, rng: np.random.Generator, *, full: float, gain: float
) -> np.ndarray:
    """Shot and read noise, offset, 12-bit quantisation in uint16."""
    electrons = rng.poisson(np.maximum(signal, 0.0) * gain).astype(np.float32) / gain
    img = electrons + rng.normal(0.0, 0.004 * full, signal.shape) + 0.02 * full
    return np.clip(np.rint(img), 0, full).astype(np.uint16)


def fluorescence(
    n: int, size: int, rng: np.random.Generator, *, stain: str = "nuclear", cell_px: float = 9.0
) -> list[Frame]:
    """``n`` fluorescence-like fields: colonies of stained cells on a dark background.

    ``stain`` ``nuclear`` draws one bright blurred ellipse per nucleus (a Hoechst or OCT4
    stain); ``cytoplasm`` fills the colonies with a smooth, cell-textured signal (a
    cytoplasmic or membrane marker). Cells are ``cell_px`` pixels across.
    """
    if stain not in ("nuclear", "cytoplasm"):
        raise ValueError(f"stain {stain!r}: use 'nuclear' or 'cytoplasm'")
    full = 4095.0
    out = []
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for i in range(n):
        colonies = np.zeros((size, size), np.float32)
        for _ in range(int(rng.integers(1, 5))):
            cy, cx = rng.uniform(0, size, 2)
            r = rng.uniform(0.08, 0.3) * size
            wobble = 1.0 + 0.15 * np.sin(
                np.arctan2(yy - cy, xx - cx) * rng.integers(3, 7) + rng.uniform(0, 2 * math.pi)
            )
            colonies[np.hypot(yy - cy, xx - cx) < r * wobble] = 1.0
        if stain == "nuclear":
            signal = np.zeros((size, size), np.float32)
            n_cells = int(colonies.sum() / (cell_px * cell_px * 1.3))
            ys, xs = np.nonzero(colonies)
            pick = rng.integers(0, len(ys), max(n_cells, 1)) if len(ys) else np.array([], int)
            np.add.at(signal, (ys[pick], xs[pick]), rng.lognormal(0.0, 0.4, len(pick)))
            signal = ndi.gaussian_filter(signal, cell_px / 3.0) * (2 * math.pi * (cell_px / 3) ** 2)
        else:
            texture = ndi.gaussian_filter(rng.normal(size=(size, size)), cell_px / 2.5)
            texture = 1.0 + 0.6 * texture / (texture.std() + 1e-9)
            signal = ndi.gaussian_filter(colonies, 2.0) * np.maximum(texture, 0.1)
        brightness = rng.uniform(0.2, 0.7) * full / max(float(signal.max()), 1e-6)
        background = (
            0.01 * full * (1.0 + 0.3 * ndi.gaussian_filter(rng.normal(size=(size, size)), size / 8))
        )
        img = _camera(signal * brightness + background, rng, full=full, gain=rng.uniform(0.5, 2))
        out.append(Frame(f"fluo-{stain}-{i:03d}", img, f"fluo-{stain}-{i:03d}", 12))
    return out


def bad_frames(size: int, rng: np.random.Generator, *, repeats: int = 4) -> list[Frame]:
    """Frames that are not images of cells: blank (constant), black (camera dark frame),
    saturated (overexposed), all-NaN, and empty but lit fields (illumination and noise)."""
    out: list[Frame] = []
    full = 4095.0
    for i in range(repeats):
        g = f"bad-{i}"
        out.append(Frame(f"zeros-{i}", np.zeros((size, size), np.uint16), g, 12))
        level = int(rng.integers(100, 4000))
        out.append(Frame(f"constant-{i}", np.full((size, size), level, np.uint16), g, 12))
        out.append(Frame(f"nan-{i}", np.full((size, size), np.nan, np.float32), g, 32))
        sat = np.full((size, size), 255, np.uint8)
        sat[rng.random((size, size)) < 0.2] = rng.integers(200, 255)
        out.append(Frame(f"saturated-8bit-{i}", sat, g, 8))
        sat12 = np.full((size, size), 4095, np.uint16)
        sat12[: size // 3] = rng.integers(3000, 4095, (size // 3, size)).astype(np.uint16)
        out.append(Frame(f"saturated-12bit-{i}", sat12, g, 12))
        dark = rng.normal(0.02 * full, 0.004 * full, (size, size))
        out.append(Frame(f"dark-{i}", np.clip(np.rint(dark), 0, full).astype(np.uint16), g, 12))
        yy, xx = np.mgrid[0:size, 0:size] / size
        cy, cx = rng.uniform(0.3, 0.7, 2)
        illum = 0.5 * full * (1.0 - 0.4 * ((yy - cy) ** 2 + (xx - cx) ** 2))
        mottle = 1.0 + 0.01 * ndi.gaussian_filter(rng.normal(size=(size, size)), 6.0) / 0.05
        lit = _camera(illum * mottle, rng, full=full, gain=1.0)
        out.append(Frame(f"empty-lit-{i}", lit, g, 12))
    return out
