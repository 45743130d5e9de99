"""Pixel size from the image metadata, and the downsampling rule that follows from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from stemwatch.core.optics import (
    TARGET_PIXEL_UM,
    downsample_for,
    ome_pixel_size_um,
    read_pixel_size,
    tiff_resolution_um,
)

PIXELS = np.zeros((32, 32), np.uint16)


def ome(size: str, unit: str | None = "&#181;m") -> str:
    unit_attr = f' PhysicalSizeXUnit="{unit}"' if unit else ""
    return (
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0">'
        f'<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="32" SizeY="32" '
        f'SizeC="1" SizeZ="1" SizeT="1" PhysicalSizeX="{size}"{unit_attr}>'
        "<TiffData/></Pixels></Image></OME>"
    )


def test_ome_physical_size_in_its_unit() -> None:
    assert ome_pixel_size_um(ome("0.65")) == pytest.approx(0.65)
    assert ome_pixel_size_um(ome("650", "nm")) == pytest.approx(0.65)
    assert ome_pixel_size_um(ome("1.3", None)) == pytest.approx(1.3)  # µm is OME's default
    assert ome_pixel_size_um(ome("0.65", "furlong")) is None
    assert ome_pixel_size_um(ome("n/a")) is None
    assert ome_pixel_size_um("<not xml") is None and ome_pixel_size_um(None) is None


def test_tiff_resolution_tags() -> None:
    assert tiff_resolution_um(15384.615, 3) == pytest.approx(0.65)  # px per cm
    assert tiff_resolution_um(39077.0, 2) == pytest.approx(0.65, rel=1e-3)  # px per inch
    ij = "ImageJ=1.11a\nimages=1\nunit=micron\n"
    assert tiff_resolution_um(1 / 0.325, 1, ij) == pytest.approx(0.325)
    assert tiff_resolution_um(1 / 0.325, 1, "ImageJ=1.5\nunit=\\u00B5m") == pytest.approx(0.325)
    assert tiff_resolution_um(72.0, 2) is None  # 72 dpi: a writer's default, not the optics
    assert tiff_resolution_um(1.0, 1) is None  # no unit at all


def test_read_pixel_size_from_files(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "ome.tif", PIXELS, description=ome("0.65"), metadata=None)
    tifffile.imwrite(tmp_path / "tifffile.ome.tif", PIXELS, metadata={"PhysicalSizeX": 1.0})
    tifffile.imwrite(
        tmp_path / "cm.tif", PIXELS, resolution=(15384.615, 15384.615), resolutionunit="CENTIMETER"
    )
    tifffile.imwrite(
        tmp_path / "ij.tif", PIXELS, imagej=True, resolution=(2.0, 2.0), metadata={"unit": "um"}
    )
    tifffile.imwrite(tmp_path / "dpi.tif", PIXELS, resolution=(72, 72), resolutionunit="INCH")
    tifffile.imwrite(tmp_path / "plain.tif", PIXELS)
    (tmp_path / "broken.tif").write_bytes(b"II*\x00garbage")
    got = {p.name: read_pixel_size(p) for p in sorted(tmp_path.iterdir())}
    assert got["ome.tif"] is not None and got["ome.tif"].um == pytest.approx(0.65)
    assert got["ome.tif"].source == "OME PhysicalSizeX"
    assert got["tifffile.ome.tif"] is not None and got["tifffile.ome.tif"].um == 1.0
    assert got["cm.tif"] is not None and got["cm.tif"].um == pytest.approx(0.65)
    assert got["cm.tif"].source == "TIFF resolution tags"
    assert got["ij.tif"] is not None and got["ij.tif"].um == pytest.approx(0.5)
    assert got["dpi.tif"] is None and got["plain.tif"] is None and got["broken.tif"] is None
    assert read_pixel_size(tmp_path / "image.png") is None


@pytest.mark.parametrize(
    ("pixel_um", "factor"),
    [(1.0, 2), (0.65, 3), (0.325, 6), (1.3, 2), (2.0, 1), (4.0, 1), (0.5, 4)],
)
def test_downsampling_aims_at_two_micrometres(pixel_um: float, factor: int) -> None:
    assert TARGET_PIXEL_UM == 2.0
    assert downsample_for(pixel_um) == factor
    assert downsample_for(pixel_um, target_um=4.0) == max(1, round(4.0 / pixel_um))
    with pytest.raises(ValueError, match="positive"):
        downsample_for(0.0)
