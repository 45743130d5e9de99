"""The reader on the team's real microscope images (skipped where ../shared/real is absent)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from stemwatch.core.imaging import TilingSpec, prepare, read_image

pytestmark = pytest.mark.shared


def test_every_shared_image_reads_and_prepares(shared_real):
    paths = sorted(p for p in shared_real.rglob("*") if p.suffix.lower() in {".tif", ".tiff"})
    assert paths, f"no TIFFs under {shared_real}"
    for path in paths:
        img = read_image(path)
        assert img.pixels.ndim == 2 and img.pixels.dtype == np.uint8, path
        assert img.pixels.std() > 1, path  # real content, not zeros
        tiles = prepare(img.pixels)
        assert len(tiles.data) >= 1 and np.isfinite(tiles.data).all(), path


def test_palette_lzw_colonies(shared_real):
    path = sorted((shared_real / "hipsc-colonies").glob("*.tif*"))[0]
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert (page.photometric, page.compression) == (3, 5)  # palette, LZW
        index = page.asarray()
        lum = (page.colormap[0][index] / 257).round()  # gray palette: luminance == red
    np.testing.assert_allclose(read_image(path).pixels, lum, atol=1)


def test_round_well_black_surround_is_excluded(shared_real):
    path = sorted((shared_real / "hipsc-whole-wells").glob("*.tif*"))[0]
    pixels = read_image(path).pixels
    spec = TilingSpec()
    tiles = prepare(pixels, spec=spec)
    total = tiles.grid_shape[0] * tiles.grid_shape[1]
    assert 0 < len(tiles.data) < total
    black = pixels <= 5
    f, s = spec.downsample, spec.tile_size * spec.downsample
    last = pixels.shape[0] // f - spec.tile_size
    corners = {(0, 0), (0, last), (last, 0), (last, last)}
    for r, c in tiles.origins.tolist():
        assert black[r * f : r * f + s, c * f : c * f + s].mean() < 0.5, (r, c)
    assert not corners & {tuple(o) for o in tiles.origins.tolist()}
    assert black[:50, :50].mean() > 0.9  # the corner really is the black surround
