"""Reading microscope images and turning them into model-ready tiles.

One module used by both the trainer and the monitor, so preprocessing in deployment is the
preprocessing of training. The recipe (:func:`prepare`):

1. :func:`read_image` reads one 2-D grayscale plane in its own dtype: TIFF (8/12/16-bit
   integer, float, multi-page, OME-TIFF, BigTIFF; uncompressed, LZW, deflate, zstd, JPEG...
   through imagecodecs), PNG and JPEG. Palette images become their luminance (uint8), RGB(A)
   becomes luminance in the sample dtype, min-is-white is inverted. The file type is told
   from its first bytes, not its suffix. Truncated, corrupt or empty files raise
   :class:`ImageReadError` naming the file; nothing is zero-filled. It is three steps that
   the daemon takes apart: :func:`read_bytes` reads the file once (the daemon hashes these
   bytes), :func:`check_file` checks the structure of every page (:mod:`stemwatch.core.tiff`)
   and the page count against the OME-XML without decoding, :func:`decode` decodes a page.
2. :func:`downsample` by an integer factor: block mean in float32; edge rows and columns
   that do not fill a block are dropped.
3. :func:`normalise` the downsampled plane with :class:`NormalisationRecipe`:
   ``(x - P_low) / (P_high - P_low)`` clipped to ``[0, 1]``, float32. The percentiles are
   taken over the finite pixels of an evenly strided grid of at most ``max_samples`` pixels
   (all pixels of planes up to that size; 65,536 by default, a 256 x 256 grid). A flat image
   (``P_high - P_low < eps``) becomes all zeros; NaN and inf pixels become 0.
4. :func:`make_tiles` cuts ``tile_size`` tiles on a ``stride`` grid (the last row and column of
   tiles are aligned to the image edge, so every pixel is covered) and keeps the foreground
   tiles: standard deviation at least ``min_foreground_std`` (drops empty background) and at
   most ``max_dark_fraction`` of pixels at or below ``dark_level`` (drops the black surround
   of a round whole-well image, whose pixels sit at the normalised floor). At most
   ``max_tiles`` tiles are kept, evenly spread over the foreground.
"""

from __future__ import annotations

import io
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xxhash
from pydantic import BaseModel, ConfigDict, Field

from stemwatch.core import dib, tiff
from stemwatch.core.errors import ImageReadError
from stemwatch.core.filekinds import READABLE_SUFFIXES, unsupported_format

TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
OTHER_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
IMAGE_SUFFIXES = TIFF_SUFFIXES | OTHER_SUFFIXES  # what a training folder holds
DIB_SUFFIXES = frozenset({".dib", ".c01"})
HEAD_BYTES = 16

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_LUMA = (0.299, 0.587, 0.114)
_NATIVE = "<" if sys.byteorder == "little" else ">"
_HASH_CHUNK = 1 << 20


class NormalisationRecipe(BaseModel):
    """Percentile normalisation to float32 in [0, 1] over the whole (downsampled) image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["percentile"] = "percentile"
    p_low: float = Field(default=1.0, ge=0, lt=100, description="Lower percentile -> 0.")
    p_high: float = Field(default=99.8, gt=0, le=100, description="Upper percentile -> 1.")
    clip: bool = Field(default=True, description="Clip the result to [0, 1].")
    eps: float = Field(default=1e-6, gt=0, description="Spans below this count as flat.")
    max_samples: int = Field(
        default=65536,
        ge=1024,
        description="Percentiles are estimated on an evenly strided grid of at most this many "
        "pixels (exact for smaller planes).",
    )


class TilingSpec(BaseModel):
    """How an image becomes model inputs: integer downsampling, then square tiles."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    downsample: int = Field(default=4, ge=1, description="Block-mean factor before tiling.")
    tile_size: int = Field(default=128, ge=16, description="Tile side in downsampled pixels.")
    stride: int | None = Field(default=None, ge=1, description="Tile step; None means tile_size.")
    min_foreground_std: float = Field(
        default=0.02,
        ge=0,
        description="Tiles whose normalised std is below this are background and skipped.",
    )
    dark_level: float = Field(
        default=0.02,
        description="Normalised values at or below this count as dark (outside the sample).",
    )
    max_dark_fraction: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Tiles with more than this fraction of dark pixels (e.g. the black "
        "surround of a round well) are skipped.",
    )
    max_tiles: int = Field(default=64, ge=1, description="At most this many tiles per image.")


@dataclass(frozen=True)
class ImageData:
    """A grayscale plane read from a file, with what the file said about itself.

    ``bit_depth`` is the significant bits per sample: BitsPerSample when it is below the
    container's (a 12-bit TIFF), else OME ``Pixels SignificantBits``, else for 16-bit integer
    data the smallest of 12, 14, 16 that holds MaxSampleValue or the data's maximum (cameras
    write 12- and 14-bit data into 16-bit containers), else the container's bits (8, 16, 32
    for float). ``pixels`` may be a read-only view of the file's bytes (an uncompressed TIFF
    plane is not copied): copy it before writing into it.
    """

    path: Path
    pixels: np.ndarray
    n_pages: int = 1
    bit_depth: int = 8
    ome_xml: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Tiles:
    """Model-ready tiles of one image: ``data`` is (N, 1, S, S) float32."""

    data: np.ndarray
    origins: np.ndarray  # (N, 2) row, col of each tile's top-left in downsampled pixels
    grid_shape: tuple[int, int]
    foreground_fraction: float = field(default=1.0)


# --------------------------------------------------------------------------- reading


def to_grayscale(arr: np.ndarray) -> np.ndarray:
    """Luminance of an RGB(A) array (last axis 3 or 4); 2-D arrays pass through.

    Integer input keeps its dtype (rounded); float input gives float32.
    """
    if arr.ndim == 2:
        return arr
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        # channel by channel: 8 bytes per pixel of float32 at most, not a float copy of all
        gray = np.multiply(arr[..., 0], np.float32(_LUMA[0]), dtype=np.float32)
        part = np.empty_like(gray)
        for i in (1, 2):
            np.multiply(arr[..., i], np.float32(_LUMA[i]), out=part, dtype=np.float32)
            gray += part
        del part
        if np.issubdtype(arr.dtype, np.integer):
            info = np.iinfo(arr.dtype)
            np.rint(gray, out=gray)
            np.clip(gray, info.min, info.max, out=gray)
            return gray.astype(arr.dtype)
        return gray
    raise ValueError(f"cannot make a grayscale plane from an array of shape {arr.shape}")


Kind = Literal["tiff", "pil", "dib"]


def sniff(path: str | Path, head: bytes) -> Kind:
    """The file kind from its first bytes, not its suffix (a Cellomics .DIB/.C01, which has
    no magic number, by its suffix). A file that is none raises :class:`ImageReadError`
    (``incomplete``: a writer may not have written the header yet)."""
    p = Path(path)
    if head[:4] in tiff.MAGICS:
        return "tiff"
    if head.startswith(_PNG_MAGIC) or head.startswith(_JPEG_MAGIC):
        return "pil"
    if p.suffix.lower() in DIB_SUFFIXES:
        return "dib"
    raise ImageReadError(
        p, f"not a TIFF, PNG or JPEG file (starts with {head[:8]!r}); is it a different format?"
    )


_sniff = sniff


def _open_error(path: Path, exc: OSError, doing: str) -> ImageReadError:
    if isinstance(exc, FileNotFoundError):
        return ImageReadError(path, "file does not exist (deleted or moved before it was read)")
    if isinstance(exc, PermissionError):
        return ImageReadError(
            path, "permission denied; make the file readable for this user", failure="transient"
        )
    return ImageReadError(
        path, f"cannot {doing} the file ({exc.strerror or exc})", failure="transient"
    )


def _check_present(path: Path) -> int:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _open_error(path, exc, "stat") from None
    if size == 0:
        raise ImageReadError(path, "file is empty (0 bytes); still being written?")
    return size


def _palette_to_gray(arr: np.ndarray, colormap: np.ndarray) -> np.ndarray:
    """Index image + (3, 2**bits) colour map -> uint8 luminance via a lookup table."""
    cmap = np.asarray(colormap, dtype=np.float32)
    if cmap.max() > 255:
        cmap = cmap / 257.0
    lut = np.clip(np.rint(np.array(_LUMA, dtype=np.float32) @ cmap[:3]), 0, 255).astype(np.uint8)
    if arr.size and int(arr.max()) >= lut.shape[0]:
        raise ValueError(f"palette index {int(arr.max())} beyond the {lut.shape[0]}-entry colormap")
    return lut[arr]


def _significant_bits(
    arr: np.ndarray, bits_per_sample: int, max_sample: int | None, declared: int | None = None
) -> int:
    container = arr.dtype.itemsize * 8
    if arr.dtype.kind == "f":
        return container
    if 0 < bits_per_sample < container:
        return bits_per_sample
    if declared is not None and 0 < declared <= container:
        return declared
    if container == 16 and arr.dtype.kind == "u":
        top = max_sample if max_sample is not None and max_sample < 65535 else int(arr.max())
        for bits in (12, 14):
            if top < (1 << bits):
                return bits
    return container


@dataclass(frozen=True)
class ImageFile:
    """One image file's bytes, checked for completeness by :func:`check_file`; not decoded.

    ``layout`` is the TIFF structure (``None`` for PNG and JPEG, whose decoding is their
    check); ``expected_pages`` is what the OME-XML says this file holds.
    """

    path: Path
    data: bytes
    kind: Kind
    layout: tiff.TiffLayout | None = None
    expected_pages: int | None = None
    dib: dib.DibLayout | None = None
    size: tuple[int, int] | None = None  # (height, width) of a PNG/JPEG from its header

    @property
    def n_pages(self) -> int:
        if self.layout is not None:
            return self.layout.n_pages
        return self.dib.planes if self.dib is not None else 1

    def plane_shape(self, page: int = 0) -> tuple[int, int]:
        """(height, width) of ``page`` as the file declares it, before decoding."""
        if self.layout is not None:
            info = self.layout.pages[page]
            return info.height, info.width
        if self.dib is not None:
            return self.dib.height, self.dib.width
        return self.size if self.size is not None else (0, 0)

    @property
    def ome_xml(self) -> str | None:
        return self.layout.ome_xml if self.layout is not None else None


def read_head(path: str | Path, n: int = HEAD_BYTES) -> bytes:
    """The first ``n`` bytes of the file (to tell its kind before reading all of it).

    Raises :class:`ImageReadError` when it is missing, unreadable or empty.
    """
    p = Path(path)
    try:
        with p.open("rb", buffering=0) as fh:
            head = fh.read(n)
    except OSError as exc:
        raise _open_error(p, exc, "read") from None
    if not head:
        raise ImageReadError(p, "file is empty (0 bytes); still being written?")
    return bytes(head)


def read_bytes(path: str | Path) -> bytes:
    """The whole file, read once (hash, structure check and decoding all use these bytes).

    Raises :class:`ImageReadError` when it is missing, unreadable or empty.
    """
    p = Path(path)
    try:
        with p.open("rb", buffering=0) as fh:
            data = fh.read()
    except OSError as exc:
        raise _open_error(p, exc, "read") from None
    if not data:
        raise ImageReadError(p, "file is empty (0 bytes); still being written?")
    return bytes(data)


def check_suffix(path: str | Path) -> None:
    """Raise :class:`ImageReadError` (permanent) for a suffix that is not an image's."""
    p = Path(path)
    suffix = p.suffix.lower()
    why = unsupported_format(p)
    if why is not None:
        raise ImageReadError(p, why, failure="permanent")
    if suffix and suffix not in READABLE_SUFFIXES:
        raise ImageReadError(
            p,
            f"unsupported suffix {suffix!r}; use {', '.join(sorted(READABLE_SUFFIXES))}",
            failure="permanent",
        )


def check_file(path: str | Path, data: bytes, *, max_pixels: int | None = None) -> ImageFile:
    """The cheap check that ``data`` (the bytes of ``path``) is a complete image file.

    Tells the kind from the first bytes; for a TIFF walks every page's structure
    (:func:`stemwatch.core.tiff.parse`) and compares the page count with the OME-XML's; for
    a PNG or JPEG reads the header; for a Cellomics DIB/C01 checks its planes. No pixel is
    decoded. Raises :class:`ImageReadError` naming the file and the missing part. With
    ``max_pixels``, a Cellomics plane larger than that fails before a .C01 is inflated
    (TIFF, PNG and JPEG are checked by :func:`decode`).
    """
    p = Path(path)
    check_suffix(p)
    if not data:
        raise ImageReadError(p, "file is empty (0 bytes); still being written?")
    kind = sniff(p, data[:8])
    if kind == "dib":
        try:
            cellomics = dib.parse(
                data, compressed=p.suffix.lower() == ".c01", max_pixels=max_pixels
            )
        except dib.DibStructureError as exc:
            if exc.reason.startswith("too large"):
                raise ImageReadError(
                    p, _too_large(exc.reason, max_pixels), failure="permanent"
                ) from None
            raise ImageReadError(p, exc.reason) from None
        return ImageFile(p, data, kind, dib=cellomics)
    if kind == "pil":
        return ImageFile(p, data, kind, size=_pil_size(p, data))
    try:
        layout = tiff.parse(io.BytesIO(data), len(data))
    except tiff.TiffStructureError as exc:
        raise ImageReadError(p, exc.reason) from None
    expected = expected_pages_from_ome(layout.ome_xml, filename=p.name) if layout.ome_xml else None
    if expected is not None and expected > layout.n_pages:
        raise ImageReadError(
            p, f"truncated: OME-XML describes {expected} pages, file holds {layout.n_pages}"
        )
    return ImageFile(p, data, kind, layout, expected)


def _too_large(what: str, max_pixels: int | None) -> str:
    limit = "" if max_pixels is None else f" above the limit of {max_pixels / 1e6:g} MP"
    return (
        f"image is {what.removeprefix('too large: ')}{limit} (watch.max_megapixels; decoding "
        "takes 3.5-8 bytes per pixel): raise the limit if images this large are expected"
    )


def _pil_size(path: Path, data: bytes) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:  # reads the header only
            width, height = im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(path, f"not a readable image ({exc})") from None
    except Exception as exc:  # e.g. DecompressionBombError; never kill the caller
        raise ImageReadError(
            path, f"not a readable image ({type(exc).__name__}: {exc})", failure="permanent"
        ) from None
    return height, width


def check_pixels(image: ImageFile, page: int, max_pixels: int | None) -> None:
    """Raise :class:`ImageReadError` (permanent) when ``page`` declares more pixels than
    ``max_pixels``: refused before a byte of it is decoded."""
    if max_pixels is None:
        return
    height, width = image.plane_shape(page)
    if width * height > max_pixels:
        raise ImageReadError(
            image.path,
            _too_large(f"{width}x{height} px ({width * height / 1e6:.0f} MP)", max_pixels),
            failure="permanent",
        )


def decode(image: ImageFile, *, page: int = 0, max_pixels: int | None = None) -> ImageData:
    """Decode one grayscale plane (``page`` of a multi-page file) of a checked file.

    With ``max_pixels``, a plane declaring more pixels fails before decoding. Raises
    :class:`ImageReadError` naming the file when the pixels cannot be decoded.
    """
    if not 0 <= page < image.n_pages:
        what = "file has" if image.kind != "pil" else "PNG/JPEG files have"
        raise ImageReadError(image.path, f"page {page} requested, {what} {image.n_pages}")
    check_pixels(image, page, max_pixels)
    if image.kind == "tiff":
        return _decode_tiff(image, page)
    if image.kind == "dib":
        assert image.dib is not None
        arr = dib.plane(image.dib, page)
        bits = _significant_bits(arr, image.dib.bits, None)
        return ImageData(image.path, arr, image.n_pages, bits)
    return _decode_pil(image)


def read_image(path: str | Path, *, page: int = 0) -> ImageData:
    """Read one grayscale plane (``page`` of a multi-page TIFF): :func:`read_bytes`,
    :func:`check_file`, :func:`decode`.

    Any failure (missing, empty, truncated, corrupt, unsupported) raises
    :class:`ImageReadError` naming ``path`` and the reason.
    """
    p = Path(path)
    check_suffix(p)
    return decode(check_file(p, read_bytes(p)), page=page)


def _decode_tiff(image: ImageFile, page: int) -> ImageData:
    import tifffile

    path = image.path
    try:
        with tifffile.TiffFile(io.BytesIO(image.data)) as tif:
            tpage = tif.pages[page]
            if isinstance(tpage, tifffile.TiffFrame):
                tpage = tpage.aspage()
            arr = _stored_as_is(image.data, tpage, tif.byteorder)
            if arr is None:
                arr = tpage.asarray()
            photometric = int(tpage.photometric)
            planar = int(tpage.planarconfig)
            bits = int(tpage.bitspersample)
            max_tag = tpage.tags.get(281)  # MaxSampleValue
            max_sample = int(np.max(max_tag.value)) if max_tag is not None else None
            desc = tpage.description or None
            if photometric == 3:
                if tpage.colormap is None:
                    raise ImageReadError(path, "palette image without a ColorMap tag")
                arr = _palette_to_gray(arr, tpage.colormap)
                bits = 8
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError(
            path, "not enough memory to decode this image now", failure="transient"
        ) from None
    except Exception as exc:  # tifffile and imagecodecs raise many types on corrupt data
        raise ImageReadError(path, f"not a readable TIFF ({type(exc).__name__}: {exc})") from None
    if photometric == 2 and planar == 2 and arr.ndim == 3 and arr.shape[0] in (3, 4):
        arr = np.moveaxis(arr, 0, -1)
    while arr.ndim > 2 and arr.shape[0] == 1:  # leading singleton axes (not a 1-px image's)
        arr = arr[0]
    if arr.ndim == 3 and photometric in (0, 1) and arr.shape[-1] in (2, 3, 4):
        arr = arr[..., 0]  # gray with extra samples (e.g. alpha): keep the gray sample
    elif arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = to_grayscale(arr)
    if arr.ndim != 2:
        raise ImageReadError(
            path, f"expected one 2-D plane per page, page {page} has shape {arr.shape}"
        )
    if photometric == 0 and arr.dtype.kind == "u":  # min-is-white: make bright = high
        top = min((1 << bits) - 1, int(np.iinfo(arr.dtype).max))
        arr = (top - arr).astype(arr.dtype)
    if arr.dtype.kind == "f" and arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * np.uint8(255)
    ome = image.ome_xml
    declared = _ome_significant_bits(ome) if ome else None
    bit_depth = _significant_bits(arr, bits, max_sample, declared)
    return ImageData(path, arr, image.n_pages, bit_depth, ome, desc)


def _stored_as_is(data: bytes, tpage: Any, byteorder: str) -> np.ndarray | None:
    """The page's pixels as a read-only view of ``data`` when the file stores them as the
    array itself (uncompressed, contiguous, native byte order, aligned); else None.

    Saves a copy of the whole plane: tifffile would copy the bytes already read into a new
    array (8 MiB for a 2048² uint16 plane, ~1.5 ms per image on this machine).
    """
    dtype = tpage.dtype
    if not tpage.is_final or dtype is None or (dtype.itemsize > 1 and byteorder != _NATIVE):
        return None
    offset = int(tpage.dataoffsets[0])
    if offset % dtype.itemsize:
        return None
    count = int(np.prod(tpage.shape))
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(tpage.shape)


def _decode_pil(image: ImageFile) -> ImageData:
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = image.path
    try:
        with Image.open(io.BytesIO(image.data)) as raw:
            raw.load()
            im = ImageOps.exif_transpose(raw)  # a camera's EXIF orientation, as viewers show it
            mode = im.mode
            if mode in ("1", "LA", "L"):
                arr = np.asarray(im.convert("L"))
            elif mode.startswith("I;16"):
                arr = np.asarray(im).astype(np.uint16)
            elif mode == "I":
                arr = np.asarray(im)
                if arr.size and arr.min() >= 0 and arr.max() <= 65535:
                    arr = arr.astype(np.uint16)
                else:
                    arr = arr.astype(np.float32)
            elif mode == "F":
                arr = np.asarray(im, dtype=np.float32)
            else:
                arr = to_grayscale(np.asarray(im.convert("RGB")))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(path, f"not a readable image ({exc})") from None
    except MemoryError:
        raise ImageReadError(
            path, "not enough memory to decode this image now", failure="transient"
        ) from None
    except Exception as exc:  # e.g. DecompressionBombError; the daemon must not die on a file
        raise ImageReadError(path, f"not a readable image ({type(exc).__name__}: {exc})") from None
    if arr.ndim != 2:
        raise ImageReadError(path, f"expected a 2-D plane, got shape {arr.shape}")
    bits = _significant_bits(arr, arr.dtype.itemsize * 8, None)
    return ImageData(path, np.ascontiguousarray(arr), 1, bits)


def read_ome_xml(path: str | Path) -> str | None:
    """The OME-XML of a TIFF from its first page's IFD only (no pixels read); None when absent.

    A description cut off by the end of the file raises (it must not vanish silently).
    """
    p = Path(path)
    size = _check_present(p)
    try:
        with p.open("rb") as fh:
            if sniff(p, fh.read(8)) != "tiff":
                return None
            layout = tiff.parse(fh, size, max_pages=1)
    except OSError as exc:
        raise _open_error(p, exc, "read") from None
    except tiff.TiffStructureError as exc:
        raise ImageReadError(p, exc.reason) from None
    return layout.ome_xml


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ome_significant_bits(ome_xml: str) -> int | None:
    """``SignificantBits`` of the first OME Pixels element, if any."""
    try:
        root = ET.fromstring(ome_xml)
    except ET.ParseError:
        return None
    for el in root.iter():
        if _local(el.tag) == "Pixels":
            value = el.get("SignificantBits", "")
            return int(value) if value.isdigit() else None
    return None


def expected_pages_from_ome(ome_xml: str, *, filename: str | None = None) -> int | None:
    """How many TIFF pages the OME-XML says this file holds; None when it does not say.

    Uses the ``TiffData`` elements (``IFD`` + ``PlaneCount``) that refer to this file (no
    ``UUID FileName``, or one equal to ``filename``); without TiffData, the sum over Images of
    ``SizeZ * SizeT * channels`` (channels: the ``Channel`` elements, else ``SizeC``). A
    truncated OME-TIFF opens with fewer pages than this.
    """
    try:
        root = ET.fromstring(ome_xml)
    except ET.ParseError:
        return None
    images = [e for e in root.iter() if _local(e.tag) == "Image"]
    if not images:
        return None
    needed = 0
    planes_total = 0
    saw_tiffdata = False
    for img in images:
        pixels = next((e for e in img if _local(e.tag) == "Pixels"), None)
        if pixels is None:
            continue
        try:
            size_z = int(pixels.get("SizeZ", "1"))
            size_t = int(pixels.get("SizeT", "1"))
            size_c = int(pixels.get("SizeC", "1"))
        except ValueError:
            return None
        channels = [e for e in pixels if _local(e.tag) == "Channel"]
        n_planes = size_z * size_t * (len(channels) or size_c)
        planes_total += n_planes
        tiffdata = [e for e in pixels if _local(e.tag) == "TiffData"]
        for td in tiffdata:
            uuid = next((e for e in td if _local(e.tag) == "UUID"), None)
            fname = uuid.get("FileName") if uuid is not None else None
            if fname and filename and Path(fname).name != filename:
                continue
            saw_tiffdata = True
            try:
                ifd = int(td.get("IFD", "0"))
                count = td.get("PlaneCount")
                n = int(count) if count is not None else (n_planes if len(tiffdata) == 1 else 1)
            except ValueError:
                return None
            needed = max(needed, ifd + n)
    if saw_tiffdata:
        return needed or None
    return planes_total or None


@dataclass(frozen=True)
class PlaneChoice:
    """The page of a multi-plane (OME-)TIFF to analyse, and what it is.

    ``channel`` and ``z`` are 1-based; ``note`` says in words what the file holds and which
    plane was taken (for the log and the record), None for a single-plane file.
    """

    page: int
    channel: int | None = None
    channel_name: str | None = None
    z: int | None = None
    note: str | None = None


def choose_plane(
    ome_xml: str | None,
    *,
    filename: str,
    n_pages: int,
    channels: Sequence[str] | None = None,
    z_plane: Literal["first", "middle", "last"] = "first",
) -> PlaneChoice:
    """Which page of a file holding several channels, focal planes or time points to analyse.

    Reads the OME ``Pixels`` of this file's ``Image`` (``DimensionOrder``, ``SizeZ/C/T``,
    ``Channel`` names): the channel is the first entry of ``channels`` (a number, 1-based, or
    a name) the file has, else the first; the focal plane by ``z_plane``; the first time
    point. A file without OME-XML, or whose planes are spread over several files, gives page
    0 (with a note when it holds several pages).
    """
    fallback = PlaneChoice(
        0, note=None if n_pages <= 1 else f"page 1 of {n_pages} analysed (no OME plane map)"
    )
    pixels = _ome_pixels(ome_xml, filename) if ome_xml else None
    if pixels is None:
        return fallback
    try:
        sizes = {d: int(pixels.get(f"Size{d}", "1")) for d in "ZCT"}
    except ValueError:
        return fallback
    order = pixels.get("DimensionOrder", "XYZCT").upper()
    names = [c.get("Name") for c in pixels if _local(c.tag) == "Channel"]
    if len(names) != sizes["C"]:
        names = [None] * sizes["C"]
    total = sizes["Z"] * sizes["C"] * sizes["T"]
    if total <= 1:
        return PlaneChoice(0, channel_name=names[0] if names else None)
    if total > n_pages or len(order) != 5 or sorted(order[2:]) != ["C", "T", "Z"]:
        return fallback
    c = _pick_channel(names, channels)
    z = {"first": 0, "middle": (sizes["Z"] - 1) // 2, "last": sizes["Z"] - 1}[z_plane]
    coords = {"Z": z, "C": c, "T": 0}
    page, stride = 0, 1
    for dim in order[2:]:
        page += coords[dim] * stride
        stride *= sizes[dim]
    words = (("C", "channel(s)"), ("Z", "plane(s)"), ("T", "time point(s)"))
    held = ", ".join(f"{sizes[d]} {w}" for d, w in words if sizes[d] > 1)
    label = f"channel {c + 1}" + (f" ({names[c]})" if names[c] else "")
    note = f"the file holds {held}: analysed {label}, plane {z + 1}, time point 1"
    return PlaneChoice(page, c + 1, names[c], z + 1 if sizes["Z"] > 1 else None, note)


def _pick_channel(names: list[str | None], wanted: Sequence[str] | None) -> int:
    for entry in wanted or ():
        text = entry.strip()
        if text.isdigit() and 1 <= int(text) <= len(names):
            return int(text) - 1
        for i, name in enumerate(names):
            if name and name.lower() == text.lower():
                return i
    return 0


def _ome_pixels(ome_xml: str, filename: str) -> ET.Element | None:
    """The Pixels element of the Image stored in ``filename`` (else of the only Image)."""
    try:
        root = ET.fromstring(ome_xml)
    except ET.ParseError:
        return None
    images = [e for e in root.iter() if _local(e.tag) == "Image"]
    chosen = images[0] if len(images) == 1 else None
    for img in images:
        for uuid in (e for e in img.iter() if _local(e.tag) == "UUID"):
            if uuid.get("FileName") and Path(uuid.get("FileName", "")).name == filename:
                chosen = img
    if chosen is None:
        return None
    return next((e for e in chosen if _local(e.tag) == "Pixels"), None)


def hash_bytes(data: bytes) -> str:
    """XXH3-128 hex digest of ``data``: the content hash of a file already read."""
    return xxhash.xxh3_128(data).hexdigest()


def content_hash(path: str | Path) -> str:
    """XXH3-128 hex digest of the whole file, read in 1 MiB chunks (equal to
    :func:`hash_bytes` of its bytes).

    Used to tell a rewritten file from an unchanged one (not for security): XXH3 hashes at
    memory speed (~0.4 ms for 8 MiB here, BLAKE2b took ~8 ms, a quarter of the daemon's CPU per
    image with the default model). Raises :class:`ImageReadError` when the file cannot be read.
    """
    p = Path(path)
    h = xxhash.xxh3_128()
    buf = bytearray(_HASH_CHUNK)
    view = memoryview(buf)
    try:
        with p.open("rb", buffering=0) as fh:
            while True:
                n = fh.readinto(buf)
                if not n:
                    break
                h.update(view[:n])
    except OSError as exc:
        raise ImageReadError(
            p, f"cannot read the file to hash it ({exc.strerror or exc})"
        ) from None
    return h.hexdigest()


# --------------------------------------------------------------------------- preparing


def _sample_grid(x: np.ndarray, max_samples: int) -> np.ndarray:
    """An evenly strided sub-grid of ``x`` with at most about ``max_samples`` pixels."""
    if x.size <= max_samples:
        return x
    step = int(np.ceil(np.sqrt(x.size / max_samples)))
    return x[::step, ::step]


def normalise(pixels: np.ndarray, recipe: NormalisationRecipe | None = None) -> np.ndarray:
    """Apply the percentile recipe; returns a new float32 array, safe on flat and NaN images."""
    r = recipe or NormalisationRecipe()
    x = np.asarray(pixels)
    if x.dtype == np.bool_:
        x = x.view(np.uint8)
    sample = _sample_grid(x, r.max_samples)
    floating = x.dtype.kind == "f"
    if floating:
        sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return np.zeros(x.shape, dtype=np.float32)
    lo, hi = np.percentile(sample, [r.p_low, r.p_high])
    span = float(hi - lo)
    if not np.isfinite(span) or span < r.eps:
        return np.zeros(x.shape, dtype=np.float32)
    out = np.subtract(x, np.float32(lo), dtype=np.float32)
    out *= np.float32(1.0 / span)
    if r.clip:
        np.clip(out, 0.0, 1.0, out=out)
    if floating:
        np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0 if r.clip else 0.0, neginf=0.0)
    return out


def downsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Block mean by an integer factor, as float32; edge rows and columns that do not fill a
    block are dropped.

    Sums strided slices (exact integer sums for 8/16-bit input), several times faster than a
    reshape-and-mean over two axes.
    """
    if factor < 1:
        raise ValueError(f"downsample factor must be >= 1, got {factor}")
    if factor == 1:
        return np.asarray(x, dtype=np.float32)
    h, w = (x.shape[0] // factor) * factor, (x.shape[1] // factor) * factor
    if h == 0 or w == 0:
        raise ValueError(f"image of shape {x.shape} is smaller than one {factor}x{factor} block")
    v = x[:h, :w]
    acc: type[np.generic]
    if v.dtype.kind in "ub" and v.dtype.itemsize <= 2 and factor <= 256:
        acc = np.uint32
    elif v.dtype.kind == "i" and v.dtype.itemsize <= 2 and factor <= 256:
        acc = np.int32
    elif v.dtype.kind == "f":
        acc = np.float32
    else:
        acc = np.float64
    cols = v[:, 0::factor].astype(acc)
    for k in range(1, factor):
        np.add(cols, v[:, k::factor], out=cols, casting="unsafe")
    blocks = cols[0::factor].copy()
    for k in range(1, factor):
        np.add(blocks, cols[k::factor], out=blocks)
    out = blocks.astype(np.float32, copy=acc is not np.float32)
    out *= np.float32(1.0 / (factor * factor))
    return out


def _starts(length: int, size: int, step: int) -> list[int]:
    """Tile starts covering ``length``; the last tile is aligned to the end."""
    starts = list(range(0, length - size + 1, step))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def make_tiles(norm: np.ndarray, spec: TilingSpec) -> Tiles:
    """Cut a normalised, downsampled plane into tiles; keep foreground tiles only.

    An image smaller than one tile is padded by reflection. When no tile is foreground the
    single most textured tile is kept, so every image yields at least one tile.
    """
    s = spec.tile_size
    step = spec.stride or s
    if norm.ndim != 2 or norm.size == 0:
        raise ValueError(f"make_tiles needs a non-empty 2-D plane, got shape {norm.shape}")
    if norm.shape[0] < s or norm.shape[1] < s:
        pad_h, pad_w = max(0, s - norm.shape[0]), max(0, s - norm.shape[1])
        reflect_ok = norm.shape[0] > pad_h and norm.shape[1] > pad_w
        norm = np.pad(norm, ((0, pad_h), (0, pad_w)), mode="reflect" if reflect_ok else "edge")
    rows = _starts(norm.shape[0], s, step)
    cols = _starts(norm.shape[1], s, step)
    origins = np.array([(r, c) for r in rows for c in cols], dtype=np.int32)
    stds = np.empty(len(origins), dtype=np.float32)
    dark = np.empty(len(origins), dtype=np.float32)
    for i, (r0, c0) in enumerate(origins.tolist()):
        t = norm[r0 : r0 + s, c0 : c0 + s]
        stds[i] = t.std()
        dark[i] = np.count_nonzero(t <= spec.dark_level) / t.size
    keep = (stds >= spec.min_foreground_std) & (dark <= spec.max_dark_fraction)
    if keep.any():
        idx = np.flatnonzero(keep)
    else:
        idx = np.array([int(np.argmax(np.where(dark <= spec.max_dark_fraction, stds, -1.0)))])
    if len(idx) > spec.max_tiles:
        idx = idx[np.linspace(0, len(idx) - 1, spec.max_tiles).round().astype(int)]
    data = np.empty((len(idx), 1, s, s), dtype=np.float32)
    for j, k in enumerate(idx.tolist()):
        r0, c0 = int(origins[k, 0]), int(origins[k, 1])
        data[j, 0] = norm[r0 : r0 + s, c0 : c0 + s]
    return Tiles(
        data=data,
        origins=origins[idx],
        grid_shape=(len(rows), len(cols)),
        foreground_fraction=float(keep.mean()),
    )


def prepare(
    pixels: np.ndarray,
    recipe: NormalisationRecipe | None = None,
    spec: TilingSpec | None = None,
) -> Tiles:
    """The whole recipe: downsample, normalise, tile. Used verbatim by trainer and monitor."""
    t = spec or TilingSpec()
    return make_tiles(normalise(downsample(pixels, t.downsample), recipe), t)
