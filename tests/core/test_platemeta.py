"""Plate, well, field and time resolution from OME-XML, instrument names and user regexes."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import tifffile

from stemwatch.core.config import validate_mapping
from stemwatch.core.errors import ConfigError, PlateMetadataError
from stemwatch.core.imaging import read_image
from stemwatch.core.platemeta import (
    PRESETS,
    IgnoredImageError,
    PlateMetaConfig,
    UnresolvedImageError,
    preset_names,
    resolve,
    resolve_many,
    select_presets,
    with_config,
)

# --------------------------------------------------------------------------- wells


# --------------------------------------------------------------------------- presets

PRESET_CASES = [
    ("incucyte", "VID123_A1_1_2023y05m12d_14h30m.tif",
     dict(plate="VID123", well="A01", field=1, time_basis="epoch",
          time_s=datetime(2023, 5, 12, 14, 30, tzinfo=UTC).timestamp())),
    ("incucyte", "my_exp_2_H12_4_2024y01m02d_03h04m.tiff",
     dict(plate="my_exp_2", well="H12", field=4)),
    ("incucyte-elapsed", "VID123_B3_2_01d06h30m.tif",
     dict(plate="VID123", well="B03", field=2, time_s=(24 + 6.5) * 3600, time_basis="elapsed")),
    ("imagexpress", "TimePoint_3/Plate1_A01_s2_w1.TIF",
     dict(plate="Plate1", well="A01", field=2, timepoint=3, channel=1)),
    ("imagexpress",
     "TimePoint_12/ZStep_1/My_Plate_P24_s1_w2B5A4C0D1-1234-4ABC-9DEF-0123456789AB.tif",
     dict(plate="My_Plate", well="P24", field=1, timepoint=12, channel=2)),
    ("imagexpress", "run/Plate9_C07.tif", dict(plate="Plate9", well="C07", field=1)),
    ("operetta", "Plate42__2024-01-01T10_00_00-Measurement 1/Images/r02c05f03p01-ch1sk4fk1fl1.tiff",
     dict(plate="Plate42__2024-01-01T10_00_00-Measurement 1", well="B05", field=3, timepoint=4,
          channel=1)),
    ("cellvoyager-cv7000", "Plate1_B03_T0001F001L01A01Z01C01.tif",
     dict(plate="Plate1", well="B03", field=1, timepoint=1, channel=1)),
    ("cellvoyager-cv1000", "expA/W0014F0002T0003Z001C1.tif",
     dict(plate="expA", well="B02", field=2, timepoint=3, channel=1)),
]  # fmt: skip


@pytest.mark.parametrize(("preset", "name", "want"), PRESET_CASES)
def test_presets(tmp_path, preset, name, want):
    loc = resolve(tmp_path / name, use_mtime=False, well_columns=12)
    assert loc.source.startswith(f"preset:{preset}")
    for key, value in want.items():
        assert getattr(loc, key) == value, key


def test_every_preset_example_resolves_with_only_that_preset(tmp_path):
    for name, preset in PRESETS.items():
        loc = resolve(
            tmp_path / "plateX" / preset.example, presets=[name], use_mtime=False, well_columns=12
        )
        assert loc.source.startswith(f"preset:{name}")
        assert re.fullmatch(r"[A-P]\d\d", loc.well)
    assert preset_names() == list(PRESETS)


def test_imagexpress_thumbnails_are_ignored(tmp_path):
    with pytest.raises(IgnoredImageError, match="thumbnail"):
        resolve(tmp_path / "TimePoint_1" / "Plate1_A01_s1_w1_thumb.tif")
    thumb = "Plate1_A01_s1_w1_thumbE3C7B0C1-1234-4ABC-9DEF-0123456789AB.tif"
    with pytest.raises(PlateMetadataError):
        resolve(tmp_path / thumb)


def test_cv1000_well_columns(tmp_path):
    loc = resolve(tmp_path / "W0025F0001T0001Z001C1.tif", well_columns=24, use_mtime=False)
    assert loc.well == "B01"
    # without the plate's width the well number means C01 on a 96-well plate, B01 on a
    # 384-well one: the image is placed nowhere rather than maybe in the wrong well
    with pytest.raises(UnresolvedImageError, match=r"set plate\.well_columns"):
        resolve(tmp_path / "W0025F0001T0001Z001C1.tif", use_mtime=False)


def test_select_presets_unknown_name():
    with pytest.raises(ConfigError, match="unknown file-name preset 'nikon'"):
        select_presets(["incucyte", "nikon"])


def test_presets_can_be_disabled(tmp_path):
    path = tmp_path / "VID123_A1_1_2023y05m12d_14h30m.tif"
    with pytest.raises(UnresolvedImageError, match="none selected"):
        resolve(path, presets=[])
    loc = resolve(path, presets=["operetta", "incucyte"], use_mtime=False)
    assert loc.source == "preset:incucyte"


# --------------------------------------------------------------------------- OME-XML


def _plate_ome(
    *,
    wells: list[tuple[int, int, list[str]]],
    images: list[tuple[str, str]],
    plate_name: str = "PlateOME",
    n_pages: int = 1,
    acquisition: str | None = None,
    delta_t: str | None = None,
    delta_unit: str = "s",
) -> str:
    """OME-XML with one Plate; wells = (row, col, [image ids]); images = (id, file name)."""
    well_xml = ""
    sample = 0
    for wi, (row, col, ids) in enumerate(wells):
        samples = ""
        for iid in ids:
            samples += (
                f'<WellSample ID="WellSample:{sample}" Index="{sample}">'
                f'<ImageRef ID="{iid}"/></WellSample>'
            )
            sample += 1
        well_xml += f'<Well ID="Well:{wi}" Row="{row}" Column="{col}">{samples}</Well>'
    image_xml = ""
    for iid, fname in images:
        acq = f"<AcquisitionDate>{acquisition}</AcquisitionDate>" if acquisition else ""
        plane = (
            f'<Plane TheZ="0" TheC="0" TheT="0" DeltaT="{delta_t}" DeltaTUnit="{delta_unit}"/>'
            if delta_t is not None
            else ""
        )
        image_xml += (
            f'<Image ID="{iid}" Name="{fname}">{acq}<Pixels ID="Pixels:{iid}" '
            f'DimensionOrder="XYZCT" Type="uint16" SizeX="32" SizeY="32" SizeZ="1" SizeC="1" '
            f'SizeT="{n_pages}"><Channel ID="Channel:{iid}:0" SamplesPerPixel="1"/>'
            f'<TiffData IFD="0" PlaneCount="{n_pages}"><UUID FileName="{fname}">urn:uuid:x</UUID>'
            f"</TiffData>{plane}</Pixels></Image>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        f'<Plate ID="Plate:0" Name="{plate_name}" Rows="8" Columns="12">{well_xml}</Plate>'
        f"{image_xml}</OME>"
    )


def _write_ome(path: Path, xml: str, n_pages: int = 1) -> Path:
    tifffile.imwrite(path, np.zeros((n_pages, 32, 32), np.uint16), description=xml)
    return path


def test_ome_plate_metadata_from_a_real_file(tmp_path):
    name = "anything_at_all.ome.tif"
    xml = _plate_ome(
        wells=[(1, 4, ["Image:0"])],
        images=[("Image:0", name)],
        n_pages=2,
        delta_t="90",
        delta_unit="min",
    )
    path = _write_ome(tmp_path / name, xml, n_pages=2)
    img = read_image(path)
    loc = resolve(path, ome_xml=img.ome_xml)
    assert (loc.plate, loc.well, loc.time_s, loc.time_basis) == (
        "PlateOME",
        "B05",
        5400.0,
        "elapsed",
    )
    assert loc.source == "ome"


def test_ome_acquisition_date_plus_delta_t(tmp_path):
    xml = _plate_ome(
        wells=[(0, 0, ["Image:0"])],
        images=[("Image:0", "a.tif")],
        acquisition="2024-03-01T12:00:00",
        delta_t="30",
    )
    loc = resolve(tmp_path / "a.tif", ome_xml=xml)
    assert loc.time_s == datetime(2024, 3, 1, 12, 0, 30, tzinfo=UTC).timestamp()
    assert loc.time_basis == "epoch"


def test_ome_picks_the_image_of_this_file_and_its_field(tmp_path):
    xml = _plate_ome(
        wells=[(0, 0, ["Image:0"]), (2, 2, ["Image:1", "Image:2"])],
        images=[("Image:0", "f0.tif"), ("Image:1", "f1.tif"), ("Image:2", "f2.tif")],
    )
    loc = resolve(tmp_path / "f2.tif", ome_xml=xml, use_mtime=False)
    assert (loc.well, loc.field) == ("C03", 2)
    assert resolve(tmp_path / "f0.tif", ome_xml=xml, use_mtime=False).well == "A01"


def test_ome_wins_and_file_name_fills_gaps(tmp_path):
    name = "Plate1_A02_T0007F003L01A01Z01C01.tif"
    xml = _plate_ome(wells=[(0, 1, ["Image:0"])], images=[("Image:0", name)], delta_t="3600")
    loc = resolve(tmp_path / name, ome_xml=xml)
    assert (loc.plate, loc.well, loc.time_s) == ("PlateOME", "A02", 3600.0)
    assert loc.timepoint == 7 and loc.channel == 1  # only the name knows these
    assert loc.source == "ome+preset:cellvoyager-cv7000"


def test_ome_and_name_disagreeing_on_the_well_place_the_image_nowhere(tmp_path):
    name = "Plate1_H12_T0007F003L01A01Z01C01.tif"
    xml = _plate_ome(wells=[(0, 1, ["Image:0"])], images=[("Image:0", name)], delta_t="3600")
    with pytest.raises(UnresolvedImageError, match="preset:cellvoyager-cv7000 says well H12, "
                       "ome says A02"):  # fmt: skip
        resolve(tmp_path / name, ome_xml=xml)


def test_ome_plate_without_name_uses_the_folder(tmp_path):
    xml = _plate_ome(wells=[(0, 0, ["Image:0"])], images=[("Image:0", "a.tif")])
    xml = xml.replace(' Name="PlateOME"', "")
    loc = resolve(tmp_path / "exp12" / "a.tif", ome_xml=xml, use_mtime=False)
    assert (loc.plate, loc.source) == ("exp12", "ome+folder")


def test_ome_without_plate_falls_through_to_presets(tmp_path):
    path = tmp_path / "plain.ome.tif"
    tifffile.imwrite(path, np.zeros((2, 8, 8), np.uint8), ome=True)
    img = read_image(path)
    with pytest.raises(UnresolvedImageError) as info:
        resolve(path, ome_xml=img.ome_xml)
    assert "no Plate/Well/WellSample" in str(info.value)


def test_malformed_ome_is_reported(tmp_path):
    with pytest.raises(UnresolvedImageError, match="not well-formed"):
        resolve(tmp_path / "x.tif", ome_xml="<OME><Plate>")


# --------------------------------------------------------------------------- user regex, plate


def test_user_regex_with_well_and_hours(tmp_path):
    path = tmp_path / "expt7" / "plateB-well_c4-pos2-t036h.tif"
    rx = r"(?P<plate>plate\w)-well_(?P<well>\w\d+)-pos(?P<field>\d+)-t(?P<time_h>\d+)h"
    loc = resolve(path, user_regex=rx)
    assert (loc.plate, loc.well, loc.field, loc.time_s) == ("plateB", "C04", 2, 36 * 3600.0)
    assert loc.source == "user_regex"


def test_user_regex_with_row_col_and_folder_plate(tmp_path):
    path = tmp_path / "MyPlate" / "img_R3_C11_T5.png"
    loc = resolve(path, user_regex=r"_R(?P<row>\d+)_C(?P<col>\d+)_T(?P<timepoint>\d+)",
                  use_mtime=False)  # fmt: skip
    # no field in the name: the field is unknown (None), never a made-up field 1
    assert (loc.plate, loc.well, loc.timepoint, loc.field) == ("MyPlate", "C11", 5, None)
    assert loc.source == "user_regex+folder"


def test_user_regex_can_capture_folders(tmp_path):
    path = tmp_path / "run1" / "D06" / "frame.tif"
    loc = resolve(path, user_regex=r"/(?P<plate>run\d+)/(?P<well>[A-H]\d\d)/[^/]*$")
    assert (loc.plate, loc.well) == ("run1", "D06")


@pytest.mark.parametrize(
    ("rx", "msg"),
    [("(?P<well>[A-H", "not a valid regular expression"),
     ("(?P<plate>x)", "needs a (?P<well>"),
     ("(?P<well>A1)(?P<site>1)", "unknown named group")],
)  # fmt: skip
def test_user_regex_config_errors(tmp_path, rx, msg):
    with pytest.raises(ConfigError, match=re.escape(msg)):
        resolve(tmp_path / "a.tif", user_regex=rx)


def test_default_plate_and_generic_folders(tmp_path):
    path = tmp_path / "TimePoint_1" / "r01c01f01p01-ch1sk1fk1fl1.tiff"
    assert resolve(path, default_plate="P7", use_mtime=False).plate == "P7"
    assert resolve(path, use_mtime=False).plate == tmp_path.name  # TimePoint_1 is skipped


def test_mtime_is_the_last_resort_for_time(tmp_path):
    path = tmp_path / "r01c01f01p01-ch1sk1fk1fl1.tiff"
    path.write_bytes(b"x")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    loc = resolve(path)
    assert (loc.time_s, loc.time_basis) == (1_700_000_000.0, "mtime")
    assert loc.source == "preset:operetta+folder+mtime"
    assert resolve(path, use_mtime=False).time_s is None


def test_unresolvable_file_names_file_and_everything_tried(tmp_path):
    path = tmp_path / "some_random_image.tif"
    with pytest.raises(UnresolvedImageError) as info:
        resolve(path, user_regex=r"(?P<well>[A-H]\d\d)_x")
    text = str(info.value)
    assert str(path) in text
    assert "cannot tell the well" in text
    assert "OME-XML (none in file)" in text
    assert "incucyte" in text and "operetta" in text
    assert "user_regex '(?P<well>[A-H]\\\\d\\\\d)_x' (no match" in text
    assert info.value.path == str(path)
    assert isinstance(info.value, PlateMetadataError)


def test_bad_well_from_regex_is_an_error(tmp_path):
    with pytest.raises(UnresolvedImageError, match="bad well"):
        resolve(tmp_path / "Z99.tif", user_regex=r"(?P<well>Z99)")


# --------------------------------------------------------------------------- many, config


def test_resolve_many_reports_every_failure(tmp_path):
    good = tmp_path / "VID1_A1_1_00d01h00m.tif"
    tifffile.imwrite(good, np.zeros((8, 8), np.uint8))
    ome_name = "x.ome.tif"
    ome = _write_ome(
        tmp_path / ome_name,
        _plate_ome(wells=[(3, 3, ["Image:0"])], images=[("Image:0", ome_name)]),
    )
    unknown = tmp_path / "mystery.tif"
    tifffile.imwrite(unknown, np.zeros((8, 8), np.uint8))
    corrupt = tmp_path / "VID1_A2_1_00d01h00m.tif"
    corrupt.write_bytes(b"junk")
    resolved, errors = resolve_many([good, ome, unknown, corrupt])
    assert resolved[good].well == "A01"
    assert resolved[ome].well == "D04" and resolved[ome].source.startswith("ome")
    assert set(errors) == {unknown, corrupt}
    assert "cannot tell the well" in str(errors[unknown])
    assert "mystery.tif" in str(errors[unknown])
    assert "cannot read OME-XML" in str(errors[corrupt])


def test_plate_meta_config_validates_and_feeds_resolve(tmp_path):
    cfg = validate_mapping(
        PlateMetaConfig,
        {"presets": ["operetta"], "default_plate": "P1", "use_mtime": False},
        "monitor.yaml",
    )
    loc = resolve(tmp_path / "r01c02f01p01-ch1sk1fk1fl1.tiff", **with_config(cfg))
    assert (loc.plate, loc.well) == ("P1", "A02")
    with pytest.raises(ConfigError, match=r"monitor\.yaml: presets"):
        validate_mapping(PlateMetaConfig, {"presets": ["nope"]}, "monitor.yaml")
    with pytest.raises(ConfigError, match="user_regex"):
        validate_mapping(PlateMetaConfig, {"user_regex": "(?P<x>"}, "monitor.yaml")
