"""The optics a model depends on: the pixel size, and the downsampling that follows from it.

A CNN trained on cells at one scale sees cells at another scale as something else, and
block-mean downsampling by too large a factor blurs the texture of pluripotent colonies
away. So the downsampling factor is never a silent default: the trainer takes the images'
pixel size from their metadata (:func:`read_pixel_size`: OME-XML ``PhysicalSizeX``, else the
TIFF resolution tags, ImageJ's unit convention included) or from the user, and derives the
factor by one rule, :func:`downsample_for`: the integer that brings the pixel size closest to
:data:`TARGET_PIXEL_UM` (2 µm per downsampled pixel: a ~10 µm stem cell stays about five
pixels across; 1 µm/px gives 2, a 20x objective's 0.65 µm/px gives 3). The pixel size and
the factor are recorded in the run and in the exported model's metadata
(``ModelMetadata.pixel_size_um``), so the monitor can compare an image's pixel size with
training's.
"""

from __future__ import annotations

import logging
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

TARGET_PIXEL_UM = 2.0
"""Pixel size (µm) the automatic downsampling aims at."""
PLAUSIBLE_PIXEL_UM = (0.02, 50.0)
"""Pixel sizes outside this range are not a microscope's (72 dpi is 353 µm): ignored."""

_UM_PER_UNIT = {
    "µm": 1.0,  # micro sign
    "\u03bcm": 1.0,  # Greek mu
    "um": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "nm": 1e-3,
    "mm": 1e3,
    "cm": 1e4,
    "m": 1e6,
    "Å": 1e-4,
    "pm": 1e-6,
}
_TIFF_UNIT_UM = {2: 25_400.0, 3: 10_000.0}  # ResolutionUnit: inch, centimetre


@dataclass(frozen=True)
class PixelSize:
    """A pixel size in µm and where it came from (e.g. ``OME PhysicalSizeX``)."""

    um: float
    source: str


def _plausible(um: float | None, where: str) -> float | None:
    if um is None or not math.isfinite(um):
        return None
    lo, hi = PLAUSIBLE_PIXEL_UM
    if not lo <= um <= hi:
        log.debug("%s: pixel size %.4g µm is not a microscope's; ignored", where, um)
        return None
    return um


def ome_pixel_size_um(ome_xml: str | None) -> float | None:
    """``PhysicalSizeX`` of the first OME ``Pixels`` element in µm (its unit converted; µm
    when the unit is not given), None when absent or unknown."""
    if not ome_xml:
        return None
    try:
        root = ET.fromstring(ome_xml)
    except ET.ParseError:
        return None
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] != "Pixels":
            continue
        try:
            value = float(el.get("PhysicalSizeX", ""))
        except ValueError:
            return None
        scale = _UM_PER_UNIT.get(el.get("PhysicalSizeXUnit", "µm").strip())
        return _plausible(value * scale if scale else None, "OME PhysicalSizeX")
    return None


def _imagej_unit(description: str | None) -> str | None:
    if not description or not description.startswith("ImageJ="):
        return None
    m = re.search(r"^unit=(.+)$", description, re.MULTILINE)
    if not m:
        return None
    unit = m.group(1).strip()
    return "µm" if unit in ("\\u00B5m", "\\u00b5m") else unit


def tiff_resolution_um(
    x_resolution: float | None, resolution_unit: int | None, description: str | None = None
) -> float | None:
    """Pixel size from TIFF tags: ``x_resolution`` pixels per inch or centimetre
    (``resolution_unit`` 2 or 3), or per ImageJ ``unit=`` of the description when the unit is
    none (1). None when the tags do not give a plausible size."""
    if not x_resolution or x_resolution <= 0:
        return None
    if resolution_unit in _TIFF_UNIT_UM:
        return _plausible(_TIFF_UNIT_UM[resolution_unit] / x_resolution, "TIFF resolution")
    unit = _imagej_unit(description)
    scale = _UM_PER_UNIT.get(unit) if unit else None
    return _plausible(scale / x_resolution if scale else None, "TIFF resolution (ImageJ)")


def read_pixel_size(path: str | Path) -> PixelSize | None:
    """The pixel size a TIFF states about itself (first page only; no pixels are read):
    OME ``PhysicalSizeX`` first, then the resolution tags. None for other formats, for a
    file that does not say, and for one that cannot be read (the reader reports that)."""
    p = Path(path)
    if p.suffix.lower() not in (".tif", ".tiff"):
        return None
    import tifffile

    try:
        with tifffile.TiffFile(p) as tif:
            page = tif.pages.first
            um = ome_pixel_size_um(tif.ome_metadata)
            if um is not None:
                return PixelSize(um, "OME PhysicalSizeX")
            tag = page.tags.get("XResolution")
            unit = page.tags.get("ResolutionUnit")
            res = None
            if tag is not None:
                num, den = tag.value
                res = num / den if den else None
            um = tiff_resolution_um(res, int(unit.value) if unit is not None else None,
                                    page.description)  # fmt: skip
    except Exception as exc:  # tifffile raises many types on broken files
        log.debug("%s: no pixel size (%s: %s)", p, type(exc).__name__, exc)
        return None
    return PixelSize(um, "TIFF resolution tags") if um is not None else None


def downsample_for(pixel_size_um: float, target_um: float = TARGET_PIXEL_UM) -> int:
    """The block-mean factor that brings ``pixel_size_um`` closest to ``target_um``: at least
    1, ``round(target / pixel size)``."""
    if not pixel_size_um > 0 or not target_um > 0:
        raise ValueError(f"pixel sizes must be positive, got {pixel_size_um} and {target_um}")
    return max(1, round(target_um / pixel_size_um))
