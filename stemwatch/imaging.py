"""Reading microscope images and turning them into model-ready tiles.

One module used by both the trainer and the monitor, so preprocessing in deployment is the
preprocessing of training. The recipe:

1. read the image (TIFF of any bit depth, OME-TIFF, compressed TIFF, PNG, JPEG) as a 2-D
   grayscale plane in its own dtype (palette and RGB are converted to luminance);
2. downsample by an integer factor (block mean, float32; :class:`TilingSpec`);
3. normalise the whole downsampled plane with :class:`NormalisationRecipe`:
   ``(x - P_low) / (P_high - P_low)`` with the percentiles taken over the whole plane, clipped
   to ``[0, 1]``; a flat image (``P_high - P_low`` below ``eps``) becomes all zeros;
4. cut into ``tile_size`` tiles, keeping the tiles that hold enough texture to be foreground.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stemwatch.errors import ImageReadError

TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
OTHER_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
IMAGE_SUFFIXES = TIFF_SUFFIXES | OTHER_SUFFIXES


class NormalisationRecipe(BaseModel):
    """Percentile normalisation to float32 in [0, 1], over the whole image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["percentile"] = "percentile"
    p_low: float = Field(default=1.0, ge=0, lt=100)
    p_high: float = Field(default=99.8, gt=0, le=100)
    clip: bool = True
    eps: float = Field(default=1e-6, gt=0)


class TilingSpec(BaseModel):
    """How an image becomes model inputs: integer downsampling, then square tiles."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    downsample: int = Field(default=4, ge=1, description="Block-mean factor before tiling.")
    tile_size: int = Field(default=128, ge=16, description="Tile side in downsampled pixels.")
    stride: int | None = Field(default=None, description="Tile step; None means tile_size.")
    min_foreground_std: float = Field(
        default=0.02,
        ge=0,
        description="Tiles whose normalised std is below this are background and skipped.",
    )
    max_tiles: int = Field(default=64, ge=1, description="At most this many tiles per image.")


@dataclass(frozen=True)
class ImageData:
    """A grayscale plane read from a file, with what the file said about itself."""

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


def to_grayscale(arr: np.ndarray) -> np.ndarray:
    """Luminance of an RGB(A) array (last axis 3 or 4); 2-D arrays pass through."""
    if arr.ndim == 2:
        return arr
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        rgb = arr[..., :3].astype(np.float32)
        gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if np.issubdtype(arr.dtype, np.integer):
            return np.clip(np.rint(gray), 0, np.iinfo(arr.dtype).max).astype(arr.dtype)
        return gray
    raise ValueError(f"cannot make a grayscale plane from an array of shape {arr.shape}")


def _read_tiff(path: Path, page: int) -> ImageData:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            pages = tif.pages
            n_pages = len(pages)
            if n_pages == 0:
                raise ImageReadError(path, "TIFF holds no image pages")
            if not 0 <= page < n_pages:
                raise ImageReadError(path, f"page {page} requested, file has {n_pages}")
            tpage = pages[page]
            arr = tpage.asarray()
            photometric = int(getattr(tpage, "photometric", 1))
            if photometric == 3 and getattr(tpage, "colormap", None) is not None:
                cmap = np.asarray(tpage.colormap)  # type: ignore[union-attr]
                rgb = cmap.T[arr]
                arr = to_grayscale((rgb >> 8).astype(np.uint8) if cmap.max() > 255 else rgb)
            ome = tif.ome_metadata
            desc = getattr(tpage, "description", None) or None
            bits = int(getattr(tpage, "bitspersample", arr.dtype.itemsize * 8))
    except ImageReadError:
        raise
    except (tifffile.TiffFileError, ValueError, OSError, IndexError, KeyError) as exc:
        raise ImageReadError(path, f"not a readable TIFF ({exc})") from exc
    arr = np.squeeze(arr)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = to_grayscale(arr)
    if arr.ndim != 2:
        raise ImageReadError(path, f"expected a 2-D plane per page, got shape {arr.shape}")
    return ImageData(path, arr, n_pages, bits, ome, desc)


def _read_pil(path: Path) -> ImageData:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            converted = im.convert("RGB") if im.mode in ("P", "PA", "RGBA", "LA", "CMYK") else im
            arr = np.asarray(converted)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(path, f"not a readable image ({exc})") from exc
    arr = to_grayscale(arr)
    return ImageData(path, arr, 1, arr.dtype.itemsize * 8)


def read_image(path: str | Path, *, page: int = 0) -> ImageData:
    """Read one grayscale plane; any failure raises :class:`ImageReadError` naming ``path``."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise ImageReadError(
            p, "file does not exist (deleted or moved before it was read)"
        ) from None
    except PermissionError:
        raise ImageReadError(p, "permission denied; make the file readable for this user") from None
    if size == 0:
        raise ImageReadError(p, "file is empty (0 bytes)")
    if suffix in TIFF_SUFFIXES:
        return _read_tiff(p, page)
    if suffix in OTHER_SUFFIXES:
        return _read_pil(p)
    raise ImageReadError(p, f"unsupported suffix {suffix!r}; use TIFF, PNG or JPEG")


def normalise(pixels: np.ndarray, recipe: NormalisationRecipe | None = None) -> np.ndarray:
    """Apply the percentile recipe; returns float32, safe on flat images."""
    r = recipe or NormalisationRecipe()
    x = np.asarray(pixels, dtype=np.float32)
    lo, hi = np.percentile(x, [r.p_low, r.p_high])
    span = float(hi - lo)
    if span < r.eps:
        return np.zeros_like(x, dtype=np.float32)
    out = (x - np.float32(lo)) * np.float32(1.0 / span)
    if r.clip:
        np.clip(out, 0.0, 1.0, out=out)
    return out


def downsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Block mean by an integer factor; edge rows and columns that do not fill a block are
    dropped."""
    if factor == 1:
        return np.asarray(x, dtype=np.float32)
    h, w = (x.shape[0] // factor) * factor, (x.shape[1] // factor) * factor
    v = x[:h, :w].reshape(h // factor, factor, w // factor, factor)
    return v.mean(axis=(1, 3), dtype=np.float32)


def make_tiles(norm: np.ndarray, spec: TilingSpec) -> Tiles:
    """Cut a normalised, downsampled plane into tiles; keep foreground tiles only.

    An image smaller than one tile is padded by reflection. When no tile is foreground the
    single most textured tile is kept, so every image yields at least one tile.
    """
    s = spec.tile_size
    step = spec.stride or s
    if norm.shape[0] < s or norm.shape[1] < s:
        pad_h, pad_w = max(0, s - norm.shape[0]), max(0, s - norm.shape[1])
        norm = np.pad(
            norm, ((0, pad_h), (0, pad_w)), mode="reflect" if min(norm.shape) > 1 else "edge"
        )
    rows = list(range(0, norm.shape[0] - s + 1, step))
    cols = list(range(0, norm.shape[1] - s + 1, step))
    origins = np.array([(r, c) for r in rows for c in cols], dtype=np.int32)
    data = np.stack([norm[r : r + s, c : c + s] for r, c in origins]).astype(np.float32)
    stds = data.reshape(len(data), -1).std(axis=1)
    keep = stds >= spec.min_foreground_std
    if not keep.any():
        keep[int(np.argmax(stds))] = True
    idx = np.flatnonzero(keep)
    if len(idx) > spec.max_tiles:
        idx = idx[np.linspace(0, len(idx) - 1, spec.max_tiles).round().astype(int)]
    return Tiles(
        data=data[idx][:, None, :, :],
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
