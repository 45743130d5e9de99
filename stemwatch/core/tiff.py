"""The structure of a TIFF file, without its pixels: the project's one TIFF parser.

:func:`parse` walks the header and the chain of IFDs (one per page) and checks that every part
the file declares lies inside it: each IFD's entries, each tag's value, each page's strips or
tiles, the pointer to the next page. A file still being written, or cut short, fails here with
a reason naming the missing part, before any pixel is decoded: a truncated multi-page file
otherwise opens as a shorter stack without any error, and tifffile silently drops a tag whose
value is cut off (e.g. the OME-XML that tifffile writes at the end of the file).

:func:`stemwatch.core.imaging.check_file` calls it for every TIFF the project reads, so the
daemon's completeness check and the trainer's reader are one check; tifffile then decodes the
pixels of the page asked for. Classic TIFF and BigTIFF, either byte order.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

# bytes per value of each TIFF field type; unknown types are skipped, as TIFF 6.0 asks readers
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
               13: 4, 16: 8, 17: 8, 18: 8}  # fmt: skip
_INT_TYPES = {1: "u1", 3: "u2", 4: "u4", 6: "i1", 8: "i2", 9: "i4", 13: "u4", 16: "u8", 17: "i8",
              18: "u8"}  # fmt: skip

_WIDTH, _HEIGHT, _BITS, _DESCRIPTION, _SAMPLES = 256, 257, 258, 270, 277
_STRIP_OFFSETS, _STRIP_COUNTS, _TILE_OFFSETS, _TILE_COUNTS = 273, 279, 324, 325
_READ = frozenset({_WIDTH, _HEIGHT, _BITS, _SAMPLES, _STRIP_OFFSETS, _STRIP_COUNTS, _TILE_OFFSETS,
                   _TILE_COUNTS})  # fmt: skip


class TiffStructureError(Exception):
    """The file's TIFF structure is cut off or broken; ``reason`` says where (no file name:
    the caller adds it)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class PageInfo:
    """What one IFD declares about its page (0 where a tag is absent)."""

    offset: int
    width: int
    height: int
    samples_per_pixel: int
    bits_per_sample: int


@dataclass(frozen=True)
class TiffLayout:
    """The pages :func:`parse` found, and the first page's ImageDescription."""

    bigtiff: bool
    pages: tuple[PageInfo, ...]
    description: str | None

    @property
    def n_pages(self) -> int:
        return len(self.pages)

    @property
    def ome_xml(self) -> str | None:
        """The OME-XML, when the description is one (tifffile's rule: it ends with ``OME>``)."""
        d = self.description
        return d if d and d[-10:].strip().endswith("OME>") else None


@dataclass(frozen=True)
class _Format:
    byteorder: str
    bigtiff: bool

    @property
    def offset_size(self) -> int:
        return 8 if self.bigtiff else 4

    @property
    def header_size(self) -> int:
        return 16 if self.bigtiff else 8

    @property
    def pointer(self) -> struct.Struct:
        return struct.Struct(self.byteorder + ("Q" if self.bigtiff else "I"))


def parse(fh: BinaryIO, size: int, *, max_pages: int | None = None) -> TiffLayout:
    """Walk the TIFF in ``fh`` (``size`` bytes long) and check every part lies inside it.

    ``fh`` is any seekable binary stream: an ``io.BytesIO`` over bytes already read (the
    daemon reads each file once) or an open file. ``max_pages`` stops after that many IFDs
    (e.g. 1 to read the OME-XML only; the next-page pointer of the last one read is then not
    checked). Raises :class:`TiffStructureError` naming the page and the part that is missing.
    """
    fh.seek(0)
    head = fh.read(16)
    fmt = _header_format(head)
    if len(head) < fmt.header_size:
        raise TiffStructureError(
            f"truncated: the TIFF header is cut off ({len(head)} of {fmt.header_size} bytes)"
        )
    if fmt.bigtiff:
        offset_size, zero = struct.unpack(fmt.byteorder + "HH", head[4:8])
        if offset_size != 8 or zero != 0:
            raise TiffStructureError(
                f"not a readable TIFF: BigTIFF header declares {offset_size}-byte offsets"
            )
        (first,) = struct.unpack(fmt.byteorder + "Q", head[8:16])
    else:
        (first,) = struct.unpack(fmt.byteorder + "I", head[4:8])
    if first == 0:
        raise TiffStructureError(
            "incomplete: the TIFF header points to no page yet (a writer that adds the "
            "directory last is still writing, or the file is not an image)"
        )
    pages: list[PageInfo] = []
    description: str | None = None
    seen: dict[int, int] = {}
    offset = first
    while offset:
        index = len(pages)
        _check_ifd_offset(offset, index, size, fmt, seen)
        seen[offset] = index
        entries, next_offset = _read_ifd(fh, offset, index, fmt)
        page, desc = _check_page(fh, entries, offset=offset, index=index, size=size, fmt=fmt)
        pages.append(page)
        if index == 0:
            description = desc
        if max_pages is not None and len(pages) >= max_pages:
            break
        offset = next_offset
    return TiffLayout(fmt.bigtiff, tuple(pages), description)


def _header_format(head: bytes) -> _Format:
    if head[:4] not in MAGICS:
        raise TiffStructureError(f"not a TIFF file (starts with {head[:8]!r})")
    return _Format("<" if head[:2] == b"II" else ">", head[2:4] in (b"+\x00", b"\x00+"))


def _check_ifd_offset(
    offset: int, index: int, size: int, fmt: _Format, seen: dict[int, int]
) -> None:
    if offset >= size:
        cut = " (a multi-page file cut short)" if index else ""
        raise TiffStructureError(
            f"truncated: page {index} starts at byte {offset}, file has {size} bytes{cut}"
        )
    if offset < fmt.header_size:
        raise TiffStructureError(
            f"not a readable TIFF: the IFD of page {index} points into the header (byte {offset})"
        )
    if offset in seen:
        raise TiffStructureError(
            f"not a readable TIFF: page {index - 1} links back to page {seen[offset]} (a loop "
            "in the page chain)"
        )


_Entry = tuple[int, int, int, bytes]  # tag code, field type, value count, raw value field


def _read_ifd(fh: BinaryIO, offset: int, index: int, fmt: _Format) -> tuple[list[_Entry], int]:
    """The entries of the IFD at ``offset`` and its next-IFD pointer."""
    count_fmt, entry_size = ("Q", 20) if fmt.bigtiff else ("H", 12)
    count_size = struct.calcsize(count_fmt)
    fh.seek(offset)
    raw = fh.read(count_size)
    if len(raw) < count_size:
        raise TiffStructureError(f"truncated: the IFD of page {index} is cut off")
    (n_tags,) = struct.unpack(fmt.byteorder + count_fmt, raw)
    want = n_tags * entry_size + fmt.offset_size
    raw = fh.read(want)
    if len(raw) < want:
        raise TiffStructureError(f"truncated: the IFD of page {index} is cut off")
    entry = struct.Struct(fmt.byteorder + ("HHQ8s" if fmt.bigtiff else "HHI4s"))
    entries = list(entry.iter_unpack(raw[: n_tags * entry_size]))
    (next_offset,) = fmt.pointer.unpack(raw[-fmt.offset_size :])
    return entries, next_offset


def _check_page(
    fh: BinaryIO, entries: list[_Entry], *, offset: int, index: int, size: int, fmt: _Format
) -> tuple[PageInfo, str | None]:
    """Check every tag value and every strip or tile of one page lies inside the file."""
    values: dict[int, np.ndarray] = {}
    description: str | None = None
    pointer = fmt.pointer
    for code, dtype, count, field in entries:
        nbytes = count * _TYPE_SIZES.get(dtype, 0)
        if nbytes == 0:
            continue
        if nbytes <= fmt.offset_size:
            data = field[:nbytes]
        else:
            (value_offset,) = pointer.unpack(field)
            if value_offset + nbytes > size:
                raise TiffStructureError(
                    f"truncated: tag {code} of page {index} ends at byte "
                    f"{value_offset + nbytes}, file has {size} bytes"
                )
            if code not in _READ and (code != _DESCRIPTION or index or description is not None):
                continue  # only the values needed below are read
            fh.seek(value_offset)
            data = fh.read(nbytes)
        if code == _DESCRIPTION:
            if description is None and index == 0 and dtype in (2, 7):
                description = _text(data)
        elif dtype in _INT_TYPES and code not in values:
            values[code] = np.frombuffer(data, dtype=fmt.byteorder + _INT_TYPES[dtype])
    _check_strips(values, index, size)
    return (
        PageInfo(
            offset,
            _first(values, _WIDTH),
            _first(values, _HEIGHT),
            _first(values, _SAMPLES) or 1,
            _first(values, _BITS) or 1,
        ),
        description,
    )


def _check_strips(values: dict[int, np.ndarray], index: int, size: int) -> None:
    for off_code, cnt_code in ((_STRIP_OFFSETS, _STRIP_COUNTS), (_TILE_OFFSETS, _TILE_COUNTS)):
        offsets, counts = values.get(off_code), values.get(cnt_code)
        if offsets is None or counts is None:
            continue
        n = min(len(offsets), len(counts))
        off = offsets[:n].astype(np.uint64)
        cnt = counts[:n].astype(np.uint64)
        empty = np.flatnonzero((off == 0) | (cnt == 0))
        if empty.size:
            raise TiffStructureError(
                f"strip/tile {int(empty[0])} of page {index} is empty: incomplete or corrupt file"
            )
        ends = off + cnt
        beyond = np.flatnonzero(ends > size)
        if beyond.size:
            i = int(beyond[0])
            raise TiffStructureError(
                f"truncated: strip/tile {i} of page {index} ends at byte {int(ends[i])}, "
                f"file has {size} bytes (still being written or cut off?)"
            )


def _first(values: dict[int, np.ndarray], code: int) -> int:
    v = values.get(code)
    return int(v[0]) if v is not None and v.size else 0


def _text(data: bytes) -> str:
    """An ASCII field as tifffile reads it: up to the first NUL, UTF-8 else cp1252."""
    data = data.split(b"\x00", 1)[0]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")
