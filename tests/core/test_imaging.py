"""Image reading and the prepare recipe, on real files written with tifffile and Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import xxhash
from PIL import Image

from stemwatch.core.errors import ImageReadError, StemwatchError
from stemwatch.core.imaging import (
    IMAGE_SUFFIXES,
    NormalisationRecipe,
    TilingSpec,
    check_file,
    content_hash,
    downsample,
    expected_pages_from_ome,
    make_tiles,
    normalise,
    prepare,
    read_image,
    read_ome_xml,
    to_grayscale,
)


def _ramp(shape: tuple[int, int], top: int, dtype: type = np.uint16) -> np.ndarray:
    n = shape[0] * shape[1]
    return (np.arange(n, dtype=np.int64) * 7919 % (top + 1)).reshape(shape).astype(dtype)


# --------------------------------------------------------------------------- bit depths


@pytest.mark.parametrize(
    ("dtype", "top", "expected_bits"),
    [(np.uint8, 255, 8), (np.uint16, 4095, 12), (np.uint16, 16383, 14), (np.uint16, 65535, 16)],
)
def test_integer_tiffs_keep_values_and_report_bit_depth(tmp_path, dtype, top, expected_bits):
    arr = _ramp((40, 56), top, dtype)
    arr[0, 0] = top
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, arr)
    img = read_image(path)
    assert img.pixels.dtype == dtype
    np.testing.assert_array_equal(img.pixels, arr)
    assert img.bit_depth == expected_bits
    assert img.n_pages == 1
    assert img.path == path


def test_bitspersample_12_tag_wins(tmp_path):
    arr = _ramp((32, 32), 4095)
    path = tmp_path / "b12.tif"
    tifffile.imwrite(path, arr, bitspersample=12)
    img = read_image(path)
    np.testing.assert_array_equal(img.pixels, arr)
    assert img.bit_depth == 12


def test_ome_significant_bits_win_over_the_data(tmp_path):
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0">'
        '<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" SignificantBits="14" '
        'SizeX="16" SizeY="16" SizeZ="1" SizeC="1" SizeT="1"><TiffData IFD="0" PlaneCount="1"/>'
        "</Pixels></Image></OME>"
    )
    path = tmp_path / "sb.ome.tif"
    tifffile.imwrite(path, _ramp((16, 16), 1000), description=xml)
    assert read_image(path).bit_depth == 14


def test_float_tiff_is_float32(tmp_path):
    arr = np.linspace(-1, 1, 32 * 32).reshape(32, 32)
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, arr)  # float64 on disk
    img = read_image(path)
    assert img.pixels.dtype == np.float32
    assert img.bit_depth == 32
    np.testing.assert_allclose(img.pixels, arr, rtol=1e-6)


# --------------------------------------------------------------------------- pages, OME


def test_multipage_selects_page_and_counts(tmp_path):
    stack = np.stack([np.full((16, 16), i, np.uint8) for i in range(5)])
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack)
    img = read_image(path, page=3)
    assert img.n_pages == 5
    assert (img.pixels == 3).all()
    with pytest.raises(ImageReadError, match=r"page 5 requested, file has 5"):
        read_image(path, page=5)


def test_ome_tiff_returns_ome_xml_and_expected_pages(tmp_path):
    path = tmp_path / "ome.ome.tif"
    tifffile.imwrite(path, np.zeros((3, 2, 16, 16), np.uint16), ome=True, metadata={"axes": "TCYX"})
    img = read_image(path, page=5)
    assert img.ome_xml is not None and "<OME" in img.ome_xml
    assert img.n_pages == 6
    assert expected_pages_from_ome(img.ome_xml, filename=path.name) == 6
    assert read_ome_xml(path) == img.ome_xml


def test_plain_tiff_has_no_ome(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8), description="hello")
    img = read_image(path)
    assert img.ome_xml is None
    assert img.description == "hello"
    assert read_ome_xml(path) is None


def _ome(images: str) -> str:
    return f'<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">{images}</OME>'


def test_expected_pages_counts_only_this_files_tiffdata():
    xml = _ome(
        '<Image ID="Image:0"><Pixels SizeZ="1" SizeC="1" SizeT="4">'
        '<TiffData IFD="0" PlaneCount="2"><UUID FileName="a.ome.tif">u1</UUID></TiffData>'
        '<TiffData IFD="0" PlaneCount="2"><UUID FileName="b.ome.tif">u2</UUID></TiffData>'
        "</Pixels></Image>"
    )
    assert expected_pages_from_ome(xml, filename="a.ome.tif") == 2
    no_tiffdata = _ome(
        '<Image ID="Image:0"><Pixels SizeZ="2" SizeC="3" SizeT="2"/></Image>'
        '<Image ID="Image:1"><Pixels SizeZ="1" SizeC="1" SizeT="1"/></Image>'
    )
    assert expected_pages_from_ome(no_tiffdata) == 13
    rgb = _ome(
        '<Image ID="Image:0"><Pixels SizeZ="1" SizeC="3" SizeT="1">'
        '<Channel ID="Channel:0" SamplesPerPixel="3"/></Pixels></Image>'
    )
    assert expected_pages_from_ome(rgb) == 1
    assert expected_pages_from_ome("<not xml") is None
    assert expected_pages_from_ome(_ome("")) is None


# --------------------------------------------------------------------------- compression, colour


@pytest.mark.parametrize("compression", ["lzw", "zlib", "zstd"])
def test_compressed_tiffs_round_trip(tmp_path, compression):
    arr = _ramp((64, 48), 4095)
    path = tmp_path / f"{compression}.tif"
    tifffile.imwrite(path, arr, compression=compression, rowsperstrip=8)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].compression != 1  # really compressed
    np.testing.assert_array_equal(read_image(path).pixels, arr)


@pytest.mark.parametrize(
    ("dtype", "kw", "view"),
    [
        (np.uint16, {}, True),  # stored as is: the pixels are a view of the bytes read
        (np.uint8, {"byteorder": ">"}, True),  # one byte per sample: no byte order
        (np.float32, {}, True),
        (np.uint16, {"byteorder": ">"}, False),  # byte-swapped: tifffile converts
        (np.uint16, {"rowsperstrip": 7, "predictor": True, "compression": "zlib"}, False),
        (np.uint16, {"tile": (16, 16)}, False),  # tiles narrower than the image
    ],
)
def test_uncompressed_planes_are_read_without_a_copy_and_equal(tmp_path, dtype, kw, view):
    arr = _ramp((40, 48), 200).astype(dtype)
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, arr, **kw)
    pixels = read_image(path).pixels
    np.testing.assert_array_equal(pixels, tifffile.imread(path))
    assert pixels.dtype.isnative
    assert (pixels.base is not None and not pixels.flags.writeable) == view


def test_palette_tiff_becomes_luminance(tmp_path):
    cmap = np.zeros((3, 256), np.uint16)
    cmap[0] = np.arange(256) * 257  # red ramp, 16-bit colour map as the TIFF spec says
    cmap[1] = np.arange(256) * 257
    cmap[2] = np.arange(256) * 257
    idx = (np.arange(32 * 32) % 256).reshape(32, 32).astype(np.uint8)
    path = tmp_path / "pal.tif"
    tifffile.imwrite(path, 255 - idx, photometric="palette", colormap=cmap, compression="lzw")
    img = read_image(path)
    assert img.pixels.dtype == np.uint8
    assert img.bit_depth == 8
    np.testing.assert_array_equal(img.pixels, 255 - idx)  # gray palette: luminance == index


def test_colour_palette_uses_luma_weights(tmp_path):
    cmap = np.zeros((3, 256), np.uint16)
    cmap[1] = 65535  # every index is pure green
    path = tmp_path / "green.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8), photometric="palette", colormap=cmap)
    assert (read_image(path).pixels == round(0.587 * 255)).all()


@pytest.mark.parametrize("planar", ["contig", "separate"])
def test_rgb_tiff_becomes_luminance(tmp_path, planar):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 200
    data = rgb if planar == "contig" else np.moveaxis(rgb, -1, 0)
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, data, photometric="rgb", planarconfig=planar)
    img = read_image(path)
    assert img.pixels.shape == (16, 16)
    assert (img.pixels == round(0.299 * 200)).all()


def test_gray_with_alpha_keeps_the_gray_sample(tmp_path):
    data = np.zeros((16, 16, 2), np.uint8)
    data[..., 0], data[..., 1] = 9, 255
    path = tmp_path / "ga.tif"
    tifffile.imwrite(path, data, photometric="minisblack", extrasamples=["unassalpha"])
    assert (read_image(path).pixels == 9).all()


def test_min_is_white_is_inverted(tmp_path):
    path = tmp_path / "mw.tif"
    tifffile.imwrite(path, np.array([[0, 10], [250, 255]], np.uint8), photometric="miniswhite")
    np.testing.assert_array_equal(read_image(path).pixels, [[255, 245], [5, 0]])


def test_to_grayscale_rejects_odd_shapes():
    with pytest.raises(ValueError, match="shape"):
        to_grayscale(np.zeros((4, 4, 2)))


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_png_and_jpeg(tmp_path, suffix):
    arr = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1))
    path = tmp_path / f"img{suffix}"
    Image.fromarray(np.stack([arr] * 3, -1)).save(path)
    img = read_image(path)
    assert img.pixels.shape == (32, 32)
    assert img.pixels.dtype == np.uint8
    tol = 0 if suffix == ".png" else 8
    assert np.abs(img.pixels.astype(int) - arr).max() <= tol


def test_png_16_bit(tmp_path):
    arr = _ramp((20, 20), 60000)
    path = tmp_path / "img16.png"
    Image.fromarray(arr).save(path)
    img = read_image(path)
    assert img.pixels.dtype == np.uint16
    np.testing.assert_array_equal(img.pixels, arr)
    assert img.bit_depth == 16


def test_suffixes():
    assert {".tif", ".tiff", ".png", ".jpg", ".jpeg"} == set(IMAGE_SUFFIXES)


# --------------------------------------------------------------------------- bad files


def _cut(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.mark.parametrize("compression", [None, "lzw", "zlib"])
@pytest.mark.parametrize("fraction", [0.4, 0.97])
def test_truncated_tiff_raises_naming_file(tmp_path, compression, fraction):
    full = tmp_path / "full.tif"
    tifffile.imwrite(full, _ramp((128, 128), 65535), compression=compression, rowsperstrip=16)
    cut = _cut(full, tmp_path / "cut.tif", fraction)
    with pytest.raises(ImageReadError) as info:
        read_image(cut)
    assert str(cut) in str(info.value)
    assert isinstance(info.value, StemwatchError)


def test_truncated_multipage_raises(tmp_path):
    full = tmp_path / "stack.tif"
    tifffile.imwrite(full, np.stack([_ramp((64, 64), 255, np.uint8)] * 6))
    cut = _cut(full, tmp_path / "cut.tif", 0.5)
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(cut)  # page 0 is intact, but the stack was cut


def test_truncated_ome_raises(tmp_path):
    full = tmp_path / "full.ome.tif"
    tifffile.imwrite(full, np.zeros((4, 64, 64), np.uint16), ome=True, metadata={"axes": "TYX"})
    cut = _cut(full, tmp_path / "cut.ome.tif", 0.6)
    with pytest.raises(ImageReadError, match=r"cut\.ome\.tif"):
        read_image(cut)


def test_ome_xml_cut_off_at_the_end_raises(tmp_path):
    # tifffile writes the OME-XML after the pixels: a cut there leaves a readable image whose
    # metadata tifffile silently drops
    full = tmp_path / "full.ome.tif"
    tifffile.imwrite(full, _ramp((64, 64), 4095), ome=True)
    with tifffile.TiffFile(full) as tif:
        end_of_pixels = tif.pages[0].dataoffsets[0] + tif.pages[0].databytecounts[0]
    cut = tmp_path / "cut.ome.tif"
    cut.write_bytes(full.read_bytes()[:end_of_pixels])
    with pytest.raises(ImageReadError, match=r"cut\.ome\.tif: truncated: tag 270"):
        read_image(cut)
    with pytest.raises(ImageReadError, match="truncated"):
        read_ome_xml(cut)


def test_truncated_tiled_tiff_names_the_tile(tmp_path):
    full = tmp_path / "tiled.tif"
    tifffile.imwrite(full, _ramp((128, 128), 4095), tile=(32, 32), compression="zlib")
    cut = _cut(full, tmp_path / "cut.tif", 0.8)
    with pytest.raises(ImageReadError, match=r"truncated: strip/tile \d+ of page 0"):
        read_image(cut)


def test_ome_that_promises_more_pages_raises(tmp_path):
    xml = '<?xml version="1.0" encoding="UTF-8"?>' + _ome(
        '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" '
        'SizeX="8" SizeY="8" SizeZ="1" SizeC="1" SizeT="3"><TiffData IFD="0" PlaneCount="3"/>'
        "</Pixels></Image>"
    )
    path = tmp_path / "short.ome.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8), description=xml)
    with pytest.raises(ImageReadError, match="OME-XML describes 3 pages, file holds 1"):
        read_image(path)


def test_non_tiff_bytes_with_tif_name(tmp_path):
    path = tmp_path / "fake.tif"
    path.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(ImageReadError, match=r"fake\.tif.*not a TIFF, PNG or JPEG"):
        read_image(path)


def test_corrupt_tiff_header(tmp_path):
    path = tmp_path / "bad.tif"
    path.write_bytes(b"II*\x00" + b"\xff" * 60)
    with pytest.raises(ImageReadError, match=r"bad\.tif"):
        read_image(path)


def test_png_bytes_in_a_tif_name_are_read(tmp_path):
    path = tmp_path / "really_png.tif"
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(path, format="PNG")
    assert (read_image(path).pixels == 7).all()


def test_empty_missing_and_unsupported(tmp_path):
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.tif: file is empty"):
        read_image(empty)
    with pytest.raises(ImageReadError, match="does not exist"):
        read_image(tmp_path / "gone.tif")
    other = tmp_path / "x.bmp"
    other.write_bytes(b"BM")
    with pytest.raises(ImageReadError, match="unsupported format: BMP"):
        read_image(other)


def test_truncated_png(tmp_path):
    full = tmp_path / "full.png"
    Image.fromarray(_ramp((64, 64), 255, np.uint8)).save(full)
    cut = _cut(full, tmp_path / "cut.png", 0.5)
    with pytest.raises(ImageReadError, match=r"cut\.png"):
        read_image(cut)


# --------------------------------------------------------------------------- content hash


def test_content_hash_covers_the_whole_file(tmp_path):
    path = tmp_path / "blob.tif"
    data = bytearray(np.random.default_rng(0).integers(0, 256, 3 * (1 << 20) + 17, np.uint8))
    path.write_bytes(bytes(data))
    h1 = content_hash(path)
    assert h1 == xxhash.xxh3_128(bytes(data)).hexdigest()
    data[len(data) // 2] ^= 1  # one bit in the middle of the second MiB
    path.write_bytes(bytes(data))
    assert content_hash(path) != h1
    with pytest.raises(ImageReadError, match=r"missing\.tif"):
        content_hash(tmp_path / "missing.tif")


# --------------------------------------------------------------------------- normalise


def test_normalise_maps_percentiles_to_unit_range():
    x = np.arange(10000, dtype=np.uint16).reshape(100, 100)
    out = normalise(x, NormalisationRecipe(p_low=0, p_high=100))
    assert out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_allclose(out.ravel()[5000], 5000 / 9999, rtol=1e-5)


def test_normalise_flat_and_nan_images_are_safe():
    flat = normalise(np.full((50, 50), 1234, np.uint16))
    assert flat.dtype == np.float32 and not flat.any()
    all_nan = normalise(np.full((10, 10), np.nan, np.float32))
    assert not all_nan.any()
    x = np.linspace(0, 1, 400, dtype=np.float32).reshape(20, 20)
    x[3, 3] = np.nan
    x[4, 4] = np.inf
    out = normalise(x)
    assert np.isfinite(out).all()
    assert out[3, 3] == 0.0
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_normalise_accepts_bool_and_int64():
    mask = np.zeros((8, 8), bool)
    mask[:4] = True
    np.testing.assert_array_equal(normalise(mask, NormalisationRecipe(p_low=0, p_high=100)), mask)
    assert normalise(np.arange(64, dtype=np.int64).reshape(8, 8)).dtype == np.float32


def test_normalise_subsample_is_close_to_exact():
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 300.0, (1024, 1024)).astype(np.float32)
    approx = normalise(x)
    exact = normalise(x, NormalisationRecipe(max_samples=x.size))
    assert np.abs(approx - exact).max() < 0.02


def test_normalise_without_clip_keeps_range():
    x = np.arange(1000, dtype=np.float32).reshape(10, 100)
    out = normalise(x, NormalisationRecipe(p_low=10, p_high=90, clip=False))
    assert out.min() < 0 and out.max() > 1


# --------------------------------------------------------------------------- downsample, tiles


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_downsample_is_block_mean(dtype):
    x = _ramp((37, 42), 255 if dtype == np.uint8 else 60000).astype(dtype)
    out = downsample(x, 4)
    ref = x[:36, :40].astype(np.float64).reshape(9, 4, 10, 4).mean(axis=(1, 3))
    assert out.dtype == np.float32 and out.shape == (9, 10)
    np.testing.assert_allclose(out, ref, rtol=1e-5)
    assert downsample(x, 1).dtype == np.float32


def _textured(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_tiles_cover_the_edges_of_odd_sizes():
    spec = TilingSpec(downsample=1, tile_size=32, min_foreground_std=0.0)
    tiles = make_tiles(_textured((100, 70)), spec)
    assert tiles.grid_shape == (4, 3)
    assert tiles.data.shape == (12, 1, 32, 32) and tiles.data.dtype == np.float32
    assert {tuple(o) for o in tiles.origins.tolist()} >= {(68, 38), (0, 0)}


def test_small_image_is_padded_to_one_tile():
    tiles = make_tiles(_textured((20, 30)), TilingSpec(downsample=1, tile_size=32))
    assert tiles.data.shape == (1, 1, 32, 32)


def test_stride_overlaps_and_max_tiles_spread():
    spec = TilingSpec(downsample=1, tile_size=32, stride=16, max_tiles=5, min_foreground_std=0)
    tiles = make_tiles(_textured((128, 128)), spec)
    assert tiles.grid_shape == (7, 7)
    assert len(tiles.data) == 5
    rows = tiles.origins[:, 0]
    assert rows.min() == 0 and rows.max() == 96  # first and last tile kept, spread between


def test_foreground_filter_skips_flat_background_and_black_surround():
    img = np.full((256, 256), 0.6, np.float32)
    img[:, :128] = _textured((256, 128)) * 0.5 + 0.25  # texture on the left half
    img[:64, 128:] = 0.0  # a black corner on the right
    norm = normalise(img, NormalisationRecipe(p_low=0, p_high=100))
    spec = TilingSpec(downsample=1, tile_size=64)
    tiles = make_tiles(norm, spec)
    assert set(tiles.origins[:, 1].tolist()) == {0, 64}  # only the textured half
    assert tiles.foreground_fraction == pytest.approx(8 / 16)


def test_round_well_surround_is_excluded():
    yy, xx = np.mgrid[:512, :512]
    inside = (yy - 256) ** 2 + (xx - 256) ** 2 < 230**2
    img = np.where(inside, 80 + 60 * _textured((512, 512)), 0).astype(np.uint8)
    tiles = prepare(img, spec=TilingSpec(downsample=2, tile_size=32))
    assert 0 < len(tiles.data) < tiles.grid_shape[0] * tiles.grid_shape[1]
    for r, c in tiles.origins.tolist():
        block = inside[::2, ::2][r : r + 32, c : c + 32]
        assert block.mean() >= 0.5  # every kept tile is mostly inside the well
    assert (tiles.data <= 0).mean() < 0.5


def test_no_foreground_still_gives_one_tile():
    tiles = make_tiles(np.zeros((64, 64), np.float32), TilingSpec(downsample=1, tile_size=32))
    assert len(tiles.data) == 1
    assert tiles.foreground_fraction == 0.0


def test_prepare_end_to_end_from_file(tmp_path):
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, _ramp((512, 512), 4095), compression="zlib")
    tiles = prepare(read_image(path).pixels, NormalisationRecipe(), TilingSpec(downsample=4))
    assert tiles.data.shape[1:] == (1, 128, 128)
    assert tiles.grid_shape == (1, 1)
    assert tiles.data.min() >= 0.0 and tiles.data.max() <= 1.0


# -- issue 11: orientation, Cellomics files, the pixel limit, planes ------------------------------


def test_jpeg_exif_orientation_is_applied(tmp_path):
    from PIL import Image

    img = Image.fromarray(np.arange(40 * 60, dtype=np.uint32).reshape(40, 60).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to view
    path = tmp_path / "turned.jpg"
    img.save(path, exif=exif, quality=95)
    assert read_image(path).pixels.shape == (60, 40)


def test_cellomics_dib_and_c01_are_read_and_checked(tmp_path):
    from stemwatch.core import dib

    pixels = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64)
    for name, compressed in (("A01f00d0.DIB", False), ("A01f00d0.C01", True)):
        path = tmp_path / name
        path.write_bytes(dib.encode(pixels, compressed=compressed))
        got = read_image(path)
        assert got.pixels.shape == (48, 64) and np.array_equal(got.pixels, pixels)
    data = dib.encode(pixels)
    cut = tmp_path / "cut.DIB"
    cut.write_bytes(data[:-100])
    with pytest.raises(ImageReadError, match=r"cut\.DIB: truncated: 1 plane\(s\) of 64x48"):
        read_image(cut)
    with pytest.raises(ImageReadError, match=r"above the limit of 0\.001 MP") as info:
        check_file(tmp_path / "A01f00d0.C01", (tmp_path / "A01f00d0.C01").read_bytes(),
                   max_pixels=1000)  # fmt: skip
    assert info.value.failure == "permanent"


def test_planes_above_the_pixel_limit_are_refused_before_decoding(tmp_path):
    from PIL import Image

    from stemwatch.core.imaging import decode

    path = tmp_path / "big.tif"
    tifffile.imwrite(path, np.zeros((2048, 2048), np.uint16), compression="zlib", tile=(256, 256))
    f = check_file(path, path.read_bytes())
    with pytest.raises(ImageReadError, match=r"2048x2048 px \(4 MP\) above the limit of 1 MP"):
        decode(f, max_pixels=1_000_000)
    assert decode(f, max_pixels=5_000_000).pixels.shape == (2048, 2048)
    png = tmp_path / "big.png"
    Image.fromarray(np.zeros((1500, 1000), np.uint8)).save(png)
    g = check_file(png, png.read_bytes())
    assert g.plane_shape() == (1500, 1000)
    with pytest.raises(ImageReadError, match="1000x1500 px"):
        decode(g, max_pixels=1_000_000)


def test_one_pixel_tiff_is_a_2d_plane(tmp_path):
    path = tmp_path / "one.tif"
    tifffile.imwrite(path, np.full((1, 1), 7, np.uint16))
    assert read_image(path).pixels.shape == (1, 1)


def test_planes_of_a_5d_ome_tiff_are_chosen_not_taken_blindly(tmp_path):
    from stemwatch.core.imaging import choose_plane, decode

    stack = np.zeros((2, 3, 4, 8, 8), np.uint16)  # T, C, Z
    for t, c, z in np.ndindex(2, 3, 4):
        stack[t, c, z] = 100 * t + 10 * c + z
    path = tmp_path / "tczyx.ome.tif"
    names = {"Name": ["BF", "GFP", "RFP"]}
    tifffile.imwrite(path, stack, ome=True, metadata={"axes": "TCZYX", "Channel": names})
    f = check_file(path, path.read_bytes())
    plain = choose_plane(f.ome_xml, filename=path.name, n_pages=f.n_pages)
    assert (plain.page, plain.channel, plain.channel_name, plain.z) == (0, 1, "BF", 1)
    assert "3 channel(s), 4 plane(s), 2 time point(s)" in (plain.note or "")
    gfp = choose_plane(f.ome_xml, filename=path.name, n_pages=f.n_pages, channels=["gfp"],
                       z_plane="middle")  # fmt: skip
    assert int(decode(f, page=gfp.page).pixels[0, 0]) == 11  # t0, channel GFP, plane 2
    third = choose_plane(f.ome_xml, filename=path.name, n_pages=f.n_pages, channels=["3"],
                         z_plane="last")  # fmt: skip
    assert int(decode(f, page=third.page).pixels[0, 0]) == 23
    single = choose_plane(None, filename="x.tif", n_pages=1)
    assert single.page == 0 and single.note is None
