"""Cellomics ``.DIB`` and ``.C01`` images (ArrayScan, CellInsight), without new dependencies.

The layout is the one Bio-Formats' ``CellomicsReader`` reads: a 52-byte little-endian header
(bytes 4-7 width, 8-11 height, 12-13 number of planes, 14-15 bits per pixel, 16-19
compression), then the planes one after another, uncompressed. A ``.C01`` file is the same
bytes zlib-compressed after a 4-byte prefix. :func:`parse` checks the header and that every
plane it declares is there (a file still being written fails with the missing part), and
reads the dimensions *before* inflating a ``.C01``, so the caller can refuse an image larger
than its limit before spending the memory.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

HEADER_SIZE = 52
_DTYPES = {8: "<u1", 16: "<u2", 32: "<u4"}


class DibStructureError(Exception):
    """The file is not a complete Cellomics image; ``reason`` says why (no file name)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class DibLayout:
    """The header of a Cellomics image, and its uncompressed bytes once inflated."""

    width: int
    height: int
    planes: int
    bits: int
    compressed: bool
    data: bytes | None = None  # header + pixels, uncompressed (None until inflated)

    @property
    def plane_bytes(self) -> int:
        return self.width * self.height * (self.bits // 8)


def read_header(head: bytes, *, compressed: bool) -> DibLayout:
    """The dimensions from the first :data:`HEADER_SIZE` uncompressed bytes."""
    if len(head) < HEADER_SIZE:
        raise DibStructureError(
            f"truncated: the Cellomics header is cut off ({len(head)} of {HEADER_SIZE} bytes)"
        )
    width, height = struct.unpack_from("<ii", head, 4)
    planes, bits = struct.unpack_from("<hh", head, 12)
    if width <= 0 or height <= 0 or planes <= 0:
        raise DibStructureError(
            f"not a Cellomics image: the header declares {width}x{height} px, {planes} planes"
        )
    if bits not in _DTYPES:
        raise DibStructureError(f"not a readable Cellomics image: {bits} bits per pixel")
    return DibLayout(width, height, planes, bits, compressed)


def parse(data: bytes, *, compressed: bool, max_pixels: int | None = None) -> DibLayout:
    """Check a ``.DIB`` (``compressed=False``) or ``.C01`` file and return its layout with the
    uncompressed bytes. With ``max_pixels``, a plane larger than that raises
    :class:`DibStructureError` before anything is inflated (its reason starts with "too
    large")."""
    if compressed:
        if len(data) <= 4:
            raise DibStructureError("truncated: the .C01 file holds no compressed data")
        inflater = zlib.decompressobj()
        try:
            head = inflater.decompress(data[4:], HEADER_SIZE)
        except zlib.error as exc:
            raise DibStructureError(f"not a readable .C01 file ({exc})") from None
        layout = read_header(head, compressed=True)
        _check_size(layout, max_pixels)
        want = layout.planes * layout.plane_bytes
        try:
            rest = inflater.decompress(inflater.unconsumed_tail, want)
        except zlib.error as exc:
            raise DibStructureError(f"not a readable .C01 file ({exc})") from None
        body = head + rest
    else:
        layout = read_header(data[:HEADER_SIZE], compressed=False)
        _check_size(layout, max_pixels)
        body = data
    need = HEADER_SIZE + layout.planes * layout.plane_bytes
    if len(body) < need:
        raise DibStructureError(
            f"truncated: {layout.planes} plane(s) of {layout.width}x{layout.height} px need "
            f"{need} bytes, the file holds {len(body)} (still being written?)"
        )
    return DibLayout(layout.width, layout.height, layout.planes, layout.bits, compressed, body)


def _check_size(layout: DibLayout, max_pixels: int | None) -> None:
    if max_pixels is not None and layout.width * layout.height > max_pixels:
        raise DibStructureError(
            f"too large: {layout.width}x{layout.height} px "
            f"({layout.width * layout.height / 1e6:.0f} MP)"
        )


def plane(layout: DibLayout, index: int = 0) -> np.ndarray:
    """Plane ``index`` as a read-only (height, width) view of the file's bytes."""
    if layout.data is None:
        raise ValueError("layout holds no pixel data; use parse()")
    if not 0 <= index < layout.planes:
        raise IndexError(f"plane {index} requested, the file holds {layout.planes}")
    offset = HEADER_SIZE + index * layout.plane_bytes
    count = layout.width * layout.height
    arr = np.frombuffer(layout.data, dtype=_DTYPES[layout.bits], count=count, offset=offset)
    return arr.reshape(layout.height, layout.width)


def encode(pixels: np.ndarray, *, compressed: bool = False) -> bytes:
    """A Cellomics file holding ``pixels`` ((h, w) or (planes, h, w), uint8/16/32): the
    inverse of :func:`parse`, for tests and the synthetic microscope."""
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[None]
    bits = arr.dtype.itemsize * 8
    if arr.ndim != 3 or arr.dtype.kind != "u" or bits not in _DTYPES:
        raise ValueError(f"cannot encode an array of shape {arr.shape} and dtype {arr.dtype}")
    planes, height, width = arr.shape
    header = struct.pack("<iiihhi", HEADER_SIZE, width, height, planes, bits, 0)
    header += bytes(HEADER_SIZE - len(header))
    body = header + arr.astype(_DTYPES[bits]).tobytes()
    if not compressed:
        return body
    return struct.pack("<i", len(body)) + zlib.compress(body)
