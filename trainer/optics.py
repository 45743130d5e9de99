"""The pixel size of a training set and the downsampling factor it implies.

:func:`resolve_optics` reads every image's pixel size from its metadata
(:func:`stemwatch.core.optics.read_pixel_size`), checks that the set has one pixel size,
takes ``data.pixel_size_um`` over the metadata when given, and resolves
``data.tiling.downsample: auto`` by :func:`stemwatch.core.optics.downsample_for`. A factor
that cannot be derived is an error that says what to set: the trainer never guesses a scale.
The returned record (pixel size, its source, the factor and why) goes into the run's summary,
the checkpoint and the exported model.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from stemwatch.core.optics import PixelSize, downsample_for, read_pixel_size
from trainer.config import TrainerConfig
from trainer.data import DataError, Sample

log = logging.getLogger(__name__)

REL_TOLERANCE = 0.01
"""Pixel sizes within 1 % of each other count as one."""


def _examples(paths: Sequence[Path], n: int = 3) -> str:
    shown = ", ".join(str(p) for p in paths[:n])
    return shown + (f" (and {len(paths) - n} more)" if len(paths) > n else "")


def dataset_pixel_size(paths: Sequence[Path], *, workers: int = 2) -> PixelSize | None:
    """The one pixel size ``paths`` state in their metadata; None when none of them says.

    Raises :class:`DataError` when they state different sizes, or when some say and others
    do not (both mean a mixed set that one factor cannot serve).
    """
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        sizes = list(pool.map(read_pixel_size, paths))
    known: dict[float, list[Path]] = defaultdict(list)
    sources: dict[float, str] = {}
    unknown: list[Path] = []
    for path, size in zip(paths, sizes, strict=True):
        if size is None:
            unknown.append(path)
            continue
        key = next((k for k in known if abs(k - size.um) <= REL_TOLERANCE * k), size.um)
        known[key].append(path)
        sources.setdefault(key, size.source)
    if not known:
        return None
    if len(known) > 1:
        listed = "; ".join(
            f"{um:.4g} µm: {len(ps)} images, e.g. {_examples(ps, 2)}"
            for um, ps in sorted(known.items())
        )
        raise DataError(
            f"the images state different pixel sizes ({listed}); one model serves one scale: "
            "train on images of one magnification, or set data.pixel_size_um if the metadata "
            "is wrong"
        )
    ((um, with_size),) = known.items()
    if unknown:
        raise DataError(
            f"{len(with_size)} images state a pixel size of {um:.4g} µm but {len(unknown)} do "
            f"not: {_examples(unknown)}; set data.pixel_size_um (µm per pixel) to say it for "
            "all of them"
        )
    return PixelSize(um, sources[um])


def resolve_optics(
    cfg: TrainerConfig, samples: Sequence[Sample]
) -> tuple[TrainerConfig, dict[str, Any]]:
    """``cfg`` with ``data.tiling.downsample`` resolved to an integer, and the optics record.

    The record: ``pixel_size_um`` (None when unknown), ``pixel_size_source``, ``downsample``,
    ``downsample_rule`` and ``effective_pixel_size_um`` (µm per downsampled pixel).
    """
    d = cfg.data
    try:
        stated = dataset_pixel_size([s.path for s in samples], workers=d.io_workers)
    except DataError as exc:
        if d.pixel_size_um is None:
            raise
        log.warning(
            "data.pixel_size_um=%g is used for every image, although %s", d.pixel_size_um, exc
        )
        stated = None
    if d.pixel_size_um is not None:
        if stated is not None and abs(stated.um - d.pixel_size_um) > REL_TOLERANCE * stated.um:
            log.warning(
                "data.pixel_size_um=%g overrides the %g µm the images state (%s)",
                d.pixel_size_um,
                stated.um,
                stated.source,
            )
        pixel: PixelSize | None = PixelSize(d.pixel_size_um, "data.pixel_size_um")
    else:
        pixel = stated
    if d.tiling.downsample == "auto":
        if pixel is None:
            raise DataError(
                f"data.tiling.downsample is 'auto' but the images do not state their pixel size "
                f"(no OME PhysicalSizeX or TIFF resolution tags, e.g. in "
                f"{_examples([s.path for s in samples], 2)}); set data.pixel_size_um (µm per "
                "pixel, e.g. 0.65 for a 20x objective on a 6.5 µm camera) or data.tiling."
                "downsample (an integer). The trainer does not guess: a factor too large blurs "
                "the cells away"
            )
        factor = downsample_for(pixel.um, d.target_pixel_size_um)
        rule = (
            f"auto: round({d.target_pixel_size_um:g} µm target / {pixel.um:.4g} µm pixel "
            f"size ({pixel.source}))"
        )
    else:
        factor = d.tiling.downsample
        rule = "data.tiling.downsample"
        if pixel is not None and factor * pixel.um > 1.5 * d.target_pixel_size_um:
            log.warning(
                "data.tiling.downsample=%d at %.3g µm/px gives %.3g µm per pixel, coarser than "
                "the %.3g µm the automatic rule aims at: cell texture may be lost (set "
                "downsample: auto)",
                factor,
                pixel.um,
                factor * pixel.um,
                d.target_pixel_size_um,
            )
    record: dict[str, Any] = {
        "pixel_size_um": None if pixel is None else round(pixel.um, 6),
        "pixel_size_source": None if pixel is None else pixel.source,
        "downsample": factor,
        "downsample_rule": rule,
        "effective_pixel_size_um": None if pixel is None else round(factor * pixel.um, 6),
        "target_pixel_size_um": d.target_pixel_size_um,
    }
    log.info(
        "pixel size %s, downsample %d (%s)",
        "unknown" if pixel is None else f"{pixel.um:.4g} µm ({pixel.source})",
        factor,
        rule,
    )
    resolved = cfg.model_copy(deep=True)
    resolved.data.tiling = resolved.data.tiling.model_copy(update={"downsample": factor})
    return resolved, record
