"""Kusumoto-style labels: phase-contrast blocks labelled by their paired fluorescence.

Each phase-contrast image has an immunofluorescence image of the same field (e.g. a
differentiation marker). The fluorescence is binarised (Otsu or a fixed threshold); both images
are cut into the same square blocks; a block whose white-pixel fraction reaches
``stained_fraction`` is labelled with the stained class, otherwise with the unstained class.
The phase blocks are written as TIFFs plus a manifest the trainer reads; blocks of one source
image share its well (or, without one, the image name) so grouped splits keep them together.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stemwatch.core.errors import StemwatchError
from stemwatch.core.imaging import IMAGE_SUFFIXES, read_image
from stemwatch.core.manifest import write_manifest

log = logging.getLogger(__name__)


class LabelError(StemwatchError):
    """Phase-contrast and fluorescence images cannot be paired or do not match."""


@dataclass(frozen=True)
class LabelSettings:
    """How blocks are cut and labelled."""

    block_size: int = 256
    threshold: float | None = None
    """Fixed fluorescence threshold in raw intensity units; None means Otsu per image."""
    stained_fraction: float = 0.3
    """Minimum white-pixel fraction of a block to call it stained."""
    stained_class: str = "differentiated"
    unstained_class: str = "undifferentiated"


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


def binarise(fluorescence: np.ndarray, threshold: float | None) -> np.ndarray:
    """Boolean mask of stained pixels (``> threshold``; Otsu when ``threshold`` is None)."""
    t = otsu_threshold(fluorescence) if threshold is None else threshold
    return np.asarray(fluorescence) > t


def block_labels(mask: np.ndarray, block_size: int, stained_fraction: float) -> np.ndarray:
    """Per-block white fraction >= ``stained_fraction``; shape (rows, cols) of full blocks."""
    rows, cols = mask.shape[0] // block_size, mask.shape[1] // block_size
    if rows == 0 or cols == 0:
        return np.zeros((0, 0), dtype=bool)
    m = mask[: rows * block_size, : cols * block_size].reshape(rows, block_size, cols, block_size)
    frac = m.mean(axis=(1, 3))
    return np.asarray(frac >= stained_fraction)


def pair_images(phase_dir: Path, fluo_dir: Path) -> list[tuple[Path, Path]]:
    """Pair files by name stem (``A01_f1.tif`` with ``A01_f1.tif`` / ``A01_f1.png``)."""
    for d, what in ((phase_dir, "phase-contrast"), (fluo_dir, "fluorescence")):
        if not d.is_dir():
            raise LabelError(f"{d}: {what} folder not found")

    def index(d: Path) -> dict[str, Path]:
        return {
            p.stem: p
            for p in sorted(d.iterdir())
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        }

    phase, fluo = index(phase_dir), index(fluo_dir)
    if not phase:
        raise LabelError(f"{phase_dir}: no images (TIFF/PNG/JPEG) found")
    unpaired = sorted(set(phase) - set(fluo))
    if unpaired:
        raise LabelError(
            f"{fluo_dir}: no fluorescence image for phase-contrast image(s) "
            f"{unpaired[:5]}{' ...' if len(unpaired) > 5 else ''}; name each pair identically"
        )
    return [(phase[k], fluo[k]) for k in sorted(phase)]


def label_pairs(
    pairs: Sequence[tuple[Path, Path]], out_dir: Path, settings: LabelSettings | None = None
) -> Path:
    """Cut, label and write blocks of every pair; returns ``out_dir/manifest.csv``."""
    import tifffile

    s = settings or LabelSettings()
    rows: list[dict[str, object]] = []
    counts = {s.stained_class: 0, s.unstained_class: 0}
    for phase_path, fluo_path in pairs:
        phase = read_image(phase_path).pixels
        fluo = read_image(fluo_path).pixels
        if phase.shape != fluo.shape:
            raise LabelError(
                f"{fluo_path}: fluorescence is {fluo.shape[1]}x{fluo.shape[0]} px but "
                f"{phase_path.name} is {phase.shape[1]}x{phase.shape[0]} px; pairs must be the "
                "same field at the same size"
            )
        labels = block_labels(binarise(fluo, s.threshold), s.block_size, s.stained_fraction)
        if labels.size == 0:
            raise LabelError(
                f"{phase_path}: image {phase.shape[1]}x{phase.shape[0]} px is smaller than one "
                f"block ({s.block_size} px); lower --block-size"
            )
        loc = _location(phase_path)
        for r in range(labels.shape[0]):
            for c in range(labels.shape[1]):
                label = s.stained_class if labels[r, c] else s.unstained_class
                counts[label] += 1
                rel = Path(label) / f"{phase_path.stem}_r{r:02d}_c{c:02d}.tif"
                (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                b = s.block_size
                tifffile.imwrite(out_dir / rel, phase[r * b : (r + 1) * b, c * b : (c + 1) * b])
                rows.append(
                    {
                        "path": rel.as_posix(),
                        "label": label,
                        "plate": loc.get("plate", ""),
                        "well": loc.get("well") or phase_path.stem,
                        "field": loc.get("field", ""),
                        "experiment": "",
                        "hours_since_induction": None,
                    }
                )
    log.info("labelled %d blocks: %s", len(rows), counts)
    return write_manifest(out_dir / "manifest.csv", rows)


def _location(path: Path) -> dict[str, str]:
    try:
        from stemwatch.core.platemeta import resolve

        loc = resolve(path)
    except (StemwatchError, NotImplementedError, ValueError, TypeError):
        return {}
    out = {}
    for key in ("plate", "well", "field"):
        value = getattr(loc, key, None)
        if value not in (None, ""):
            out[key] = str(value)
    return out
