"""The one TIFF structure parser and the completeness check built on it (no pixel decoding)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from stemwatch.core import tiff
from stemwatch.core.errors import ImageReadError
from stemwatch.core.imaging import ImageFile, check_file, decode, read_bytes, read_image


def tiff_bytes(
    seed: int = 0, size: int = 64, *, compression: str | None = None, pages: int = 1, **kw: object
) -> bytes:
    """A textured uint16 OME-TIFF (one plane per page) as bytes."""
    rng = np.random.default_rng(seed)
    base = rng.normal(20000, 4000, size=(pages, size, size)).clip(0, 65535).astype(np.uint16)
    buf = io.BytesIO()
    axes = "ZYX" if pages > 1 else "YX"
    data = base if pages > 1 else base[0]
    tifffile.imwrite(buf, data, compression=compression, ome=True, metadata={"axes": axes}, **kw)
    return buf.getvalue()


def parse(data: bytes, **kw: int) -> tiff.TiffLayout:
    return tiff.parse(io.BytesIO(data), len(data), **kw)


def check(data: bytes, name: str = "x.tif") -> ImageFile:
    return check_file(Path(name), data)


# ------------------------------------------------------------------ every cut is caught


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("pages", [1, 3])
@pytest.mark.parametrize("layout", ["classic", "bigtiff", "big-endian"])
def test_every_strict_prefix_of_a_tiff_is_refused(
    compression: str | None, pages: int, layout: str
) -> None:
    kw: dict[str, object] = {"bigtiff": layout == "bigtiff"}
    if layout == "big-endian":
        kw["byteorder"] = ">"
    data = tiff_bytes(1, 32, compression=compression, pages=pages, **kw)
    accepted = []
    for cut in range(len(data)):
        try:
            check(data[:cut])
        except ImageReadError:
            continue
        accepted.append(cut)
    assert accepted == [], f"prefixes of {len(data)} bytes taken as complete: {accepted[:5]}"
    whole = check(data)
    assert whole.n_pages == pages and whole.expected_pages == pages
    assert decode(whole, page=pages - 1).pixels.shape == (32, 32)


def test_a_cut_ome_tiff_that_tifffile_opens_is_caught() -> None:
    data = tiff_bytes(2, 64, pages=3)
    cut = data[: len(data) - 20]  # only the OME-XML at the end is cut
    with tifffile.TiffFile(io.BytesIO(cut)) as tif:  # tifffile opens it without an error...
        assert len(tif.pages) >= 1
    with pytest.raises(ImageReadError, match=r"x\.tif: truncated: tag 270 of page 0"):
        check(cut)  # ...we do not take it as complete


def _plain_stack(pages: int) -> bytes:
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tw:
        for _ in range(pages):
            tw.write(np.ones((32, 32), np.uint8), metadata=None)
    return buf.getvalue()


def test_a_stack_cut_between_pages_names_the_missing_page() -> None:
    data = _plain_stack(3)
    second = parse(data).pages[1].offset
    with pytest.raises(ImageReadError, match=r"truncated: page 1 starts at byte \d+.*cut short"):
        check(data[:second])


def test_fewer_pages_than_the_ome_xml_describes() -> None:
    xml = tifffile.TiffFile(io.BytesIO(tiff_bytes(0, 16, pages=4))).ome_metadata
    assert xml is not None
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((2, 16, 16), np.uint16), description=xml, metadata=None)
    with pytest.raises(ImageReadError, match="OME-XML describes 4 pages, file holds 2"):
        check(buf.getvalue())


def test_expected_pages_from_a_real_files_ome_xml() -> None:
    f = check(tiff_bytes(0, 32, pages=5))
    assert (f.n_pages, f.expected_pages) == (5, 5)
    assert f.ome_xml is not None and f.ome_xml.rstrip().endswith("OME>")


def test_png_and_jpeg_are_not_parsed_as_tiff(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    f = check_file(path, data[: len(data) // 2])  # the header is read, the pixels decoded later
    assert f.kind == "pil" and f.layout is None and f.n_pages == 1
    assert f.plane_shape() == (64, 64)
    with pytest.raises(ImageReadError, match=r"x\.png: not a readable image"):
        decode(f)
    with pytest.raises(ImageReadError, match=r"x\.png: not a readable image"):
        check_file(path, data[:20])  # the header itself cut off


def test_read_bytes_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="does not exist"):
        read_bytes(tmp_path / "gone.tif")
    (tmp_path / "empty.tif").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        read_bytes(tmp_path / "empty.tif")
    with pytest.raises(ImageReadError, match="cannot read"):
        read_bytes(tmp_path)  # a folder


# ------------------------------------------------------------------ the parser itself


@pytest.mark.parametrize("kw", [{}, {"bigtiff": True}, {"byteorder": ">"}, {"tile": (16, 16)}])
def test_parser_agrees_with_tifffile(kw: dict[str, object]) -> None:
    buf = io.BytesIO()
    stack = np.arange(3 * 48 * 40, dtype=np.uint16).reshape(3, 48, 40)
    tifffile.imwrite(buf, stack, ome=True, metadata={"axes": "ZYX"}, **kw)
    data = buf.getvalue()
    layout = parse(data)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        assert layout.n_pages == len(tif.pages)
        assert layout.bigtiff == tif.is_bigtiff
        assert layout.ome_xml == tif.ome_metadata
        assert [p.offset for p in layout.pages] == [p.offset for p in tif.pages]
    assert {(p.width, p.height, p.samples_per_pixel, p.bits_per_sample) for p in layout.pages} == {
        (40, 48, 1, 16)
    }


def test_rgb_page_info_and_plain_description() -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((8, 8, 3), np.uint8), photometric="rgb", description="hello")
    layout = parse(buf.getvalue())
    assert layout.description == "hello" and layout.ome_xml is None
    assert (layout.pages[0].samples_per_pixel, layout.pages[0].bits_per_sample) == (3, 8)


def test_max_pages_reads_only_the_first_ifd() -> None:
    data = _plain_stack(3)
    second = parse(data).pages[1].offset
    layout = parse(data[:second], max_pages=1)  # the cut after page 0 is not looked at
    assert layout.n_pages == 1 and layout.description is None
    with pytest.raises(tiff.TiffStructureError, match="page 1 starts"):
        parse(data[:second])


def _header(first_ifd: int) -> bytes:
    return b"II*\x00" + struct.pack("<I", first_ifd)


def _ifd(entries: list[tuple[int, int, int, int]], next_ifd: int) -> bytes:
    body = b"".join(struct.pack("<HHII", *e) for e in entries)
    return struct.pack("<H", len(entries)) + body + struct.pack("<I", next_ifd)


def test_broken_structures_get_their_own_reasons() -> None:
    with pytest.raises(tiff.TiffStructureError, match=r"header is cut off \(6 of 8 bytes\)"):
        parse(_header(8)[:6])
    with pytest.raises(tiff.TiffStructureError, match="points to no page yet"):
        parse(_header(0) + b"\x00" * 64)  # libtiff writes the directory last
    with pytest.raises(tiff.TiffStructureError, match="points into the header"):
        parse(_header(4) + b"\x00" * 64)
    looped = _header(8) + _ifd([(256, 3, 1, 1), (257, 3, 1, 1)], 8)
    with pytest.raises(tiff.TiffStructureError, match="page 0 links back to page 0"):
        parse(looped)
    cut_ifd = (_header(8) + _ifd([(256, 3, 1, 1), (257, 3, 1, 1)], 0))[:20]
    with pytest.raises(tiff.TiffStructureError, match="the IFD of page 0 is cut off"):
        parse(cut_ifd)
    empty_strip = _header(8) + _ifd([(256, 3, 1, 1), (273, 4, 1, 0), (279, 4, 1, 0)], 0)
    with pytest.raises(tiff.TiffStructureError, match="strip/tile 0 of page 0 is empty"):
        parse(empty_strip)
    with pytest.raises(tiff.TiffStructureError, match="not a TIFF file"):
        parse(b"GIF89a" + b"\x00" * 20)


def test_unknown_field_types_are_skipped() -> None:
    # TIFF 6.0: readers skip fields of an unexpected type (a private tag with type 99)
    body = _ifd([(256, 3, 1, 4), (257, 3, 1, 4), (65000, 99, 10**6, 10**9)], 0)
    layout = parse(_header(8) + body)
    assert layout.n_pages == 1 and (layout.pages[0].width, layout.pages[0].height) == (4, 4)


def test_read_image_is_read_bytes_check_and_decode(tmp_path: Path) -> None:
    path = tmp_path / "a.tif"
    path.write_bytes(tiff_bytes(5, 32, pages=2))
    whole = read_image(path, page=1)
    f = check_file(path, read_bytes(path))
    assert np.array_equal(decode(f, page=1).pixels, whole.pixels)
    assert (whole.n_pages, whole.ome_xml) == (f.n_pages, f.ome_xml)
    with pytest.raises(ImageReadError, match="page 2 requested, file has 2"):
        decode(f, page=2)
