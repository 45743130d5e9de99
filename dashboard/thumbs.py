"""Small PNG thumbnails of microscope images and activation maps for the image table."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from stemwatch.core.errors import ImageReadError
from stemwatch.core.imaging import normalise, read_image

log = logging.getLogger(__name__)

THUMB_SIDE = 160


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Contrast-stretch any grayscale plane to uint8 with the shared percentile recipe."""
    return np.rint(normalise(pixels) * 255.0).astype(np.uint8)


def shrink(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """Block-mean downsample so the longer side is at most about ``max_side`` pixels."""
    factor = max(1, int(np.ceil(max(pixels.shape) / max_side)))
    if factor == 1:
        return pixels.astype(np.float32)
    h, w = (pixels.shape[0] // factor) * factor, (pixels.shape[1] // factor) * factor
    blocks = pixels[:h, :w].reshape(h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def png_bytes(gray: np.ndarray) -> bytes:
    """Encode a uint8 grayscale plane as PNG."""
    buf = io.BytesIO()
    Image.fromarray(gray, mode="L").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def image_thumbnail(path: str | Path, max_side: int = THUMB_SIDE) -> bytes | None:
    """PNG thumbnail of the microscope image at ``path``; ``None`` (logged) when the file is
    missing or unreadable, so one moved file never breaks the table."""
    try:
        data = read_image(path)
    except ImageReadError as exc:
        log.info("no thumbnail: %s", exc)
        return None
    return png_bytes(to_uint8(shrink(data.pixels, max_side)))


def resize_png(png: bytes, max_side: int = THUMB_SIDE) -> bytes | None:
    """Scale a stored PNG (an activation map) to fit ``max_side`` (blocky: one block per tile),
    colouring a grayscale map as a heatmap (dark: low, yellow: high); ``None`` if undecodable."""
    try:
        with Image.open(io.BytesIO(png)) as src:
            src.load()
            im: Image.Image = src
            if im.mode in ("L", "I", "I;16", "F"):
                im = ImageOps.colorize(
                    im.convert("L"), black="#000004", mid="#bc3754", white="#fcffa4"
                )
            scale = max_side / max(im.size)
            size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
            im = im.resize(size, Image.Resampling.NEAREST if scale > 1 else Image.Resampling.BOX)
            buf = io.BytesIO()
            im.save(buf, format="PNG")
    except (OSError, ValueError, SyntaxError) as exc:
        log.info("undecodable activation map PNG: %s", exc)
        return None
    return buf.getvalue()


def data_uri(png: bytes | None) -> str | None:
    """A ``data:`` URI for an image column of a Streamlit table."""
    if png is None:
        return None
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
