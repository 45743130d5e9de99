"""What a file is, told from its name before any byte is read.

Three questions the daemon asks of every file it finds, in this order:

1. :func:`non_image_output`: is it something an analysis *wrote* next to the images (a mask,
   a probability map, outlines, a thumbnail, a flat-field or other correction image)? Those
   are not pictures of cells and must never be scored; they are recorded as ignored with the
   reason.
2. :func:`unsupported_format`: is it a microscope format this project does not read (.nd2,
   .czi, .lif, .h5 ...)? Recorded with an "unsupported format" reason instead of failing
   five times as an unreadable TIFF.
3. Otherwise the file is read: its first bytes tell TIFF, PNG, JPEG (and the Cellomics DIB
   by its suffix), whatever the suffix says (:mod:`stemwatch.core.imaging`).
"""

from __future__ import annotations

import re
from pathlib import PurePath

# Read by stemwatch.core.imaging. .flex, .lsm and .stk are TIFF files; .dib/.c01 Cellomics.
READABLE_SUFFIXES = frozenset(
    {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".flex", ".lsm", ".stk", ".dib", ".c01"}
)

# Image formats of microscopes that are not read: recorded with this reason.
UNSUPPORTED_SUFFIXES: dict[str, str] = {
    ".nd2": "Nikon ND2",
    ".czi": "Zeiss CZI",
    ".lif": "Leica LIF",
    ".lof": "Leica LOF",
    ".xlef": "Leica XLEF",
    ".h5": "HDF5",
    ".hdf5": "HDF5",
    ".he5": "HDF5",
    ".ims": "Imaris",
    ".vsi": "Olympus VSI",
    ".oir": "Olympus OIR",
    ".oib": "Olympus OIB",
    ".oif": "Olympus OIF",
    ".zvi": "Zeiss ZVI",
    ".ics": "ICS",
    ".ids": "ICS",
    ".sld": "SlideBook",
    ".dv": "DeltaVision",
    ".mrc": "MRC",
    ".zarr": "Zarr",
    ".im": "IN Cell .im",
    ".bmp": "BMP",
    ".gif": "GIF",
}

_NON_IMAGE_WORDS = (
    r"masks?|masked|[a-z]*masked|labels|label[-_ ]?image|"
    r"prob|probs|probability|probabilities|probmap|prob[-_ ]?map|"
    r"outlines?|overlay|overlays|contours?|"
    r"thumb|thumbs|thumbnails?|preview|"
    r"flat[-_ ]?field|flatfield|dark[-_ ]?field|darkframe|dark[-_ ]?frame|"
    r"illum(?:ination)?(?:[-_ ]?corr(?:ection)?)?|shading|correction|corrected[-_ ]?bg|"
    r"background|segmented[a-z]*|segmentation|seg|objects"
)
_NON_IMAGE_NAME = re.compile(
    rf"(?:^|[_\-. ()\[\]])(?:{_NON_IMAGE_WORDS})(?=$|[_\-. ()\[\]]|\d)", re.IGNORECASE
)
_NON_IMAGE_DIR = re.compile(rf"^(?:{_NON_IMAGE_WORDS})$", re.IGNORECASE)


def non_image_output(path: str | PurePath) -> str | None:
    """Why ``path`` is an analysis output rather than an image of cells, or None.

    Looks for whole words of its name (split at ``_ - . ( ) [ ]``) and of the folders it is
    in: mask(s)/...Masked, labels, prob/probabilities/probability map, outline(s), overlay,
    contour(s), thumb/thumbnail, preview, flat-field/dark-field/illumination correction,
    shading, background, segmented/segmentation/seg, objects.
    """
    p = PurePath(path)
    stem = p.name[: -len("".join(p.suffixes))] if p.suffixes else p.name
    m = _NON_IMAGE_NAME.search(stem)
    if m is not None:
        word = m.group(0).strip("_-. ()[]")
        return (
            f"not an image of cells: the name says {word!r} (a mask, probability map, "
            "outline, thumbnail or correction image written by an analysis or the "
            "instrument); rename it if it is a real image"
        )
    for parent in p.parts[:-1]:
        if _NON_IMAGE_DIR.match(parent):
            return (
                f"not an image of cells: it is in a {parent!r} folder (analysis output); "
                "move it out if it is a real image"
            )
    return None


def unsupported_format(path: str | PurePath) -> str | None:
    """Why ``path`` is a microscope format stemwatch cannot read, or None."""
    suffix = PurePath(path).suffix.lower()
    fmt = UNSUPPORTED_SUFFIXES.get(suffix)
    if fmt is None:
        return None
    return (
        f"unsupported format: {fmt} ({suffix}) files are not read; export the images as "
        "TIFF (or OME-TIFF) for stemwatch to analyse them"
    )
