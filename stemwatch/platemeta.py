"""Resolving plate, well, field and time point for each image.

Order of evidence: OME-XML (Plate/Well/WellSample, DeltaT) first, then file-name presets for
common instruments, then a user regular expression with named groups, then the file's
modification time (time only). Wells are normalised (``A1`` == ``A01``). A file that cannot be
resolved raises :class:`PlateMetadataError`; nothing is guessed silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from stemwatch.errors import PlateMetadataError

_WELL_RE = re.compile(r"^\s*([A-Pa-p]{1,2})\s*0*(\d{1,2})\s*$")


@dataclass(frozen=True)
class ImageLocation:
    """Where and when an image was taken.

    ``time_s`` is seconds since the start of the experiment where known (OME DeltaT, an
    elapsed-time token in the name), else seconds since the epoch from the file's mtime;
    ``timepoint`` is the acquisition index where known. ``source`` says which evidence won.
    """

    plate: str
    well: str
    field: int
    timepoint: int | None
    time_s: float | None
    source: str
    expected_pages: int | None = None


def normalise_well(text: str) -> str:
    """``'a1'``, ``'A1'`` and ``'A01'`` all become ``'A01'``; raises ValueError otherwise."""
    m = _WELL_RE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a well name like 'A01' or 'B12'")
    return f"{m.group(1).upper()}{int(m.group(2)):02d}"


def well_from_index(row: int, col: int) -> str:
    """Zero-based row and column to a well name: (0, 0) -> 'A01'."""
    letters = ""
    r = row
    while True:
        letters = chr(ord("A") + r % 26) + letters
        r = r // 26 - 1
        if r < 0:
            break
    return f"{letters}{col + 1:02d}"


def resolve(
    path: Path,
    *,
    ome_xml: str | None = None,
    user_regex: str | None = None,
    default_plate: str | None = None,
) -> ImageLocation:
    """Resolve where and when ``path`` was imaged; raise :class:`PlateMetadataError` if not."""
    raise PlateMetadataError(f"{path}: plate metadata resolver not implemented yet")
