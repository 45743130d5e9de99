"""Real-looking file names of every instrument family, with defaults only (no user regex).

The table holds names of the 17 families of issue 11 (and the variants it names) with what a
careful reader of each vendor's documentation takes from them; every one must resolve to
exactly that, and no name may ever land in a wrong well: names that are ambiguous or carry no
well stay unplaced, with the reason. docs/file-names.md is generated from the preset table
and must match it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stemwatch.core.config import validate_mapping
from stemwatch.core.errors import ConfigError, PlateMetadataError
from stemwatch.core.filekinds import non_image_output, unsupported_format
from stemwatch.core.platemeta import (
    PlateMetaConfig,
    UnresolvedImageError,
    channel_excluded,
    explain,
    resolve,
    with_config,
)
from stemwatch.core.presets import PRESET_LIST, markdown_table

ROOT = Path("/data/lab")


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


# (family, path under ROOT, expected plate, well, field, timepoint, extra expectations)
NAMES: list[tuple[str, str, str, str, int | None, int | None, dict[str, Any]]] = [
    ("Incucyte", "VID123_A1_1_2023y05m12d_14h30m.tif", "VID123", "A01", 1, None,
     {"time_s": utc(2023, 5, 12, 14, 30)}),
    ("Incucyte", "exp/MiaPaCa2-PhaseOriginal_A2_3_2021y03m04d_06h40m.tif", "MiaPaCa2", "A02", 3,
     None, {"channel_name": "PhaseOriginal"}),
    ("Incucyte", "VID123_B3_2_01d06h30m.tif", "VID123", "B03", 2, None,
     {"time_s": (24 + 6.5) * 3600}),
    ("Incucyte archive", "arch/EssenFiles/ScanData/2107/15/1200/1248/A1-1-C1.tif", "1248",
     "A01", 1, None, {"time_s": utc(2021, 7, 15, 12, 0), "channel_name": "C1"}),
    ("Incucyte archive", "arch/EssenFiles/ScanData/2107/15/1400/1248/H12-4-Ph.tif", "1248",
     "H12", 4, None, {"time_s": utc(2021, 7, 15, 14, 0)}),
    ("MetaXpress", "exp/TimePoint_3/Plate1_A01_s2_w1.TIF", "Plate1", "A01", 2, 3,
     {"channel": 1}),
    ("MetaXpress", "2013-03-12/38030/ABCD_A01_s1_w5b71ae91c-75e6-426c-8b41-71a5693784e3.tif",
     "ABCD", "A01", 1, None, {"channel": 5}),
    ("MetaXpress", "x/ABCD_C07_s3b71ae91c-75e6-426c-8b41-71a5693784e3.tif", "ABCD", "C07", 3,
     None, {}),
    ("MetaXpress", "x/240124d3_B05_s151E1E486E-D339-44E8-9990-9A8894C2D5CA.tif", "240124d3",
     "B05", 15, None, {}),
    ("MetaXpress", "x/MIP-2P-2sub_C05_s1_w146C9B2CD-0BB3-4B8A-9187-2805F4C90506.tif",
     "MIP-2P-2sub", "C05", 1, None, {"channel": 1}),
    ("MetaXpress", "PlateQ/TimePoint_2/ZStep_4/A01_s1_w2.tif", "PlateQ", "A01", 1, 2,
     {"z": 4, "channel": 2}),
    ("Operetta", "P42__2024-01-01T10_00_00-Measurement 1/Images/r02c05f03p01-ch1sk4fk1fl1.tiff",
     "P42__2024-01-01T10_00_00-Measurement 1", "B05", 3, 4, {"z": 1}),
    ("Operetta", "jump/BR00116991/Images/r16c24f09p02-ch5sk1fk1fl1.tiff", "BR00116991", "P24",
     9, 1, {"z": 2, "channel": 5}),
    ("Opera .flex", "OperaRun/Meas_01/001001000.flex", "Meas_01", "A01", None, None, {}),
    ("Opera .flex", "OperaRun/Meas_01/003012002.flex", "Meas_01", "C12", 2, None, {}),
    ("CellVoyager", "Plate1_B03_T0001F001L01A01Z01C01.tif", "Plate1", "B03", 1, 1,
     {"channel": 1, "z": 1}),
    ("CellVoyager", "AssayPlate_Greiner_#655090_B02_T0003F004L01A01Z01C02.tif",
     "AssayPlate_Greiner_#655090", "B02", 4, 3, {"channel": 2}),
    ("CellVoyager .png", "20200812-CardiomyocyteDifferentiation14-Cycle1_B03_T0001F036L01A01Z18C01"
     ".png", "20200812-CardiomyocyteDifferentiation14-Cycle1", "B03", 36, 1, {"z": 18}),
    ("Cellomics", "AS_09125_050116030001_D03f00d0.DIB", "AS_09125_050116030001", "D03", 1, None,
     {"channel": 1}),
    ("Cellomics", "WHICA-VTI1_090915160001_A01f02d1.C01", "WHICA-VTI1_090915160001", "A01", 3,
     None, {"channel": 2}),
    ("Cellomics", "run9/020506platerun_A01f01d2.TIF", "020506platerun", "A01", 2, None,
     {"channel": 3}),
    ("Cellomics kinetic", "run9/020506plateruni3t004B02f01d0.TIF", "020506platerun", "B02", 2, 4,
     {}),
    ("ScanR", "ScanR_plate7/data/A1--W00001--P00001--Z00000--T00000--Alexa 488.tif",
     "ScanR_plate7", "A01", 1, 1, {"channel_name": "Alexa 488", "z": 1}),
    ("ScanR", "ScanR_plate7/data/B12--W00024--P00003--Z00002--T00010--DAPI.tif", "ScanR_plate7",
     "B12", 3, 11, {"z": 3}),
    ("IN Cell", "InCell_P3/A - 01(fld 2 wv Blue - FITC).tif", "InCell_P3", "A01", 2, None,
     {"channel_name": "Blue - FITC"}),
    ("IN Cell", "InCell_P3/A - 01(fld 1 wv UV - DAPI z 3 time 2 - 2636ms).tif", "InCell_P3",
     "A01", 1, 2, {"z": 3, "time_s": 2.636}),
    ("IN Cell", "InCell_P3/C - 6(fld 1 wv TL - Bright field - open z 01).tif", "InCell_P3",
     "C06", 1, None, {"channel_name": "TL - Bright field - open"}),
    ("IN Cell", "InCell_P3/A - 13(fld 2).tif", "InCell_P3", "A13", 2, None, {}),
    ("IN Cell 7.2", "InCell_P3/A_01_f2_c1_xUV_mDAPI_z3_t2.tif", "InCell_P3", "A01", 2, 2,
     {"channel_name": "UV - DAPI"}),
    ("Celigo", "3500001609_Scan_1-12-2018-6-03-16-AM_Well_F5_Ch1_-1um.tiff", "3500001609",
     "F05", 1, None, {"time_s": utc(2018, 1, 12, 6, 3, 16)}),
    ("Celigo", "3500001609_Scan_1-12-2018-6-03-16-PM_Well_B10_Ch2.tiff", "3500001609", "B10", 1,
     None, {"time_s": utc(2018, 1, 12, 18, 3, 16), "channel": 2}),
    ("Cytation/Gen5", "Gen5Exp/A1_03_1_1_Bright Field_001.tif", "Gen5Exp", "A01", 1, 1,
     {"channel_name": "Bright Field"}),
    ("Cytation/Gen5", "Gen5Exp/B3_02_1_2Z1_Bright Field_004.tif", "Gen5Exp", "B03", 2, 4,
     {"z": 2}),
    ("Cytation/Gen5", "run/210816_100259_Plate 1/A1_03_1_1Z2_Bright Field_001.tif", "Plate 1",
     "A01", 1, 1, {"z": 3}),
    ("NIS-Elements JOBS", "P1/WellA01_PointA01_0000_ChannelCam-DIA DIC Master Screening_Seq0000"
     ".tiff", "P1", "A01", 1, None, {"channel_name": "Cam-DIA DIC Master Screening"}),
    ("NIS-Elements JOBS", "P1/20260728_143951_318__WellC7_PointC7_0003_ChannelDAPI_Seq0004.tiff",
     "P1", "C07", 4, None, {"time_s": utc(2026, 7, 28, 14, 39, 51) + 0.318}),
    ("Leica Matrix Screener", "experiment--scan/slide--S00/chamber--U01--V02/field--X01--Y00/"
     "image--L0000--S00--U01--V02--J15--E04--O01--X01--Y00--T0003--Z00--C01.ome.tif",
     "experiment--scan", "C02", 2, 4, {"channel": 2, "z": 1}),
    ("Leica Matrix Screener", "exp2/image--L0000--S00--U00--V00--J08--E00--O00--X00--Y00--T0000"
     "--Z00--C00.ome.tif", "exp2", "A01", 1, 1, {}),
    ("ZEN export", "Plate1-Blue-A_TS-Stinger/Plate1-Blue-A-02-Scene-1-P2-E1-01_t3c1_ORG.tif",
     "Plate1-Blue-A_TS-Stinger", "E01", 2, 3, {"channel": 1}),
    ("ZEN export", "zen/3500001004_100X_20170623_5-Scene-3-P26-F05.ome.tiff", "zen", "F05", 26,
     None, {}),
    ("ACQUIFER", "IM04run/-A002--PO01--LO001--CO6--SL001--PX32500--PW0080--IN0020--TM281"
     "--X023590--Y011262--Z211710--T0200262822--WE00002.tif", "IM04run", "A02", 1, 1,
     {"channel": 6}),
    ("ACQUIFER", "IM03run/WE00020---B005--PO02--LO003--CO6--SL010--PX16250--PW0040--IN0020"
     "--TM246--X050299--Y019906--Z212275--T1375574652.tif", "IM03run", "B05", 2, 3, {"z": 10}),
    ("Micro-Manager HCS", "mm/FishDev_WT_01_1_MMStack_A1-Site_0.ome.tif", "FishDev_WT_01", "A01",
     1, None, {}),
    ("Micro-Manager HCS", "mm/screen_2/B12-Site_3/img_channel000_position003_time000000004_z002"
     ".tif", "screen_2", "B12", 4, 5, {"channel": 1, "z": 3}),
    ("Micro-Manager HCS", "mm/old/C3-Site_1/img_000000002_Brightfield_000.tif", "old", "C03", 2,
     3, {"channel_name": "Brightfield"}),
]  # fmt: skip

# Names that must be placed in no well (and say why), however tempting a guess is.
UNPLACED = [
    ("W0025F0001T0001Z001C1.tif", "plate.well_columns"),  # C01 on 96 wells, B01 on 384
    ("exp_s12c1_ORG.tif", "cannot tell the well"),  # a ZEN scene number, no well
    ("some_random_image.tif", "cannot tell the well"),
    ("P9_D01_latin1_\udce4\udcf6\udcfc_f01_t001.tif", "cannot tell the well"),
]

FAMILIES = {
    "Incucyte", "Incucyte archive", "MetaXpress", "Operetta", "Opera .flex", "CellVoyager",
    "CellVoyager .png", "Cellomics", "Cellomics kinetic", "ScanR", "IN Cell", "IN Cell 7.2",
    "Celigo", "Cytation/Gen5", "NIS-Elements JOBS", "Leica Matrix Screener", "ZEN export",
    "ACQUIFER", "Micro-Manager HCS",
}  # fmt: skip


@pytest.mark.parametrize(
    ("family", "name", "plate", "well", "field", "timepoint", "extra"),
    NAMES,
    ids=[f"{n[0]}:{Path(n[1]).name[:40]}" for n in NAMES],
)
def test_every_family_resolves_with_defaults_only(  # noqa: PLR0917 (one row of NAMES)
    family: str,
    name: str,
    plate: str,
    well: str,
    field: int | None,
    timepoint: int | None,
    extra: dict[str, Any],
) -> None:
    loc = resolve(ROOT / name, use_mtime=False)
    got = (loc.plate, loc.well, loc.field, loc.timepoint)
    assert got == (plate, well, field, timepoint), loc.source
    for key, value in extra.items():
        if key == "time_s":
            assert loc.time_s == pytest.approx(value), loc.source
        else:
            assert getattr(loc, key) == value, (key, loc.source)


def test_the_table_covers_every_family_of_the_issue() -> None:
    assert {n[0] for n in NAMES} == FAMILIES
    assert len(NAMES) >= 40


@pytest.mark.parametrize(("name", "why"), UNPLACED)
def test_names_without_a_certain_well_are_placed_nowhere(name: str, why: str) -> None:
    with pytest.raises(UnresolvedImageError, match=re.escape(why)):
        resolve(ROOT / "plateZ" / name, use_mtime=False)


def test_no_preset_places_another_family_in_a_wrong_well() -> None:
    """Each name tried with every preset alone: a preset either reads the right well or
    does not match at all."""
    from stemwatch.core.presets import GroupError

    for _family, name, _plate, well, *_ in NAMES:
        for preset in PRESET_LIST:
            try:
                found = preset.match(ROOT / name)
            except GroupError:
                continue
            if found is not None and "well" in found:
                assert found["well"] == well, (preset.name, name)


def test_every_example_in_the_preset_table_resolves_with_its_preset() -> None:
    for preset in PRESET_LIST:
        assert len(preset.examples) >= 1 and all(e.source for e in preset.examples)
        for example in preset.examples:
            loc = resolve(
                ROOT / "plateX" / example.name, presets=[preset.name], use_mtime=False,
                well_columns=12,
            )  # fmt: skip
            assert re.fullmatch(r"[A-Z]{1,2}\d\d", loc.well), (preset.name, example.name)


def test_docs_table_is_generated_from_the_presets() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "file-names.md").read_text()
    assert markdown_table() in doc, "regenerate: python -m stemwatch.core.presets > table"


# -- user regex: index bases, dates, channel names, anchoring --------------------------------------


def test_zero_based_column_is_a_clear_error_then_declared() -> None:
    rx = r"(?:^|/)(?P<plate>\w+)_R(?P<row>\d+)_C(?P<col>\d+)\.tif$"
    with pytest.raises(UnresolvedImageError) as info:  # defect 15: no raw ValueError
        resolve(ROOT / "P1_R1_C0.tif", user_regex=rx, use_mtime=False)
    assert "col 0 with a 1-based convention" in str(info.value)
    assert "index_base.col: 0" in str(info.value)
    loc = resolve(
        ROOT / "P1_R0_C0.tif", user_regex=rx, index_base={"row": 0, "col": 0}, use_mtime=False
    )
    assert loc.well == "A01"


def test_zero_based_row_is_never_stored_without_a_well_silently() -> None:
    rx = r"(?:^|/)(?P<plate>\w+)_R(?P<row>\d+)_C(?P<col>\d+)\.tif$"
    with pytest.raises(UnresolvedImageError, match="row 0 with a 1-based convention"):
        resolve(ROOT / "P1_R0_C3.tif", user_regex=rx, use_mtime=False)


def test_user_regex_bases_dates_and_channel_names() -> None:
    cfg = validate_mapping(
        PlateMetaConfig,
        {
            "user_regex": r"(?:^|/)(?P<plate>[^_/]+)_(?P<well>[A-P]\d{2})_s(?P<field>\d+)"
            r"_t(?P<timepoint>\d+)_(?P<stamp>\d{8}-\d{4})_(?P<channel>[A-Za-z]+)\.tif$",
            "index_base": {"field": 0, "timepoint": 0},
            "time_formats": {"stamp": "%Y%m%d-%H%M"},
            "presets": [],
        },
        "monitor.yaml",
    )
    loc = resolve(ROOT / "PL7_B04_s0_t2_20240301-0930_Phase.tif", **with_config(cfg))
    assert (loc.plate, loc.well, loc.field, loc.timepoint) == ("PL7", "B04", 1, 3)
    assert (loc.time_s, loc.time_basis) == (utc(2024, 3, 1, 9, 30), "epoch")
    assert loc.channel_name == "Phase" and loc.channel is None


def test_user_regex_config_problems_fail_at_startup() -> None:
    with pytest.raises(ConfigError, match="not in user_regex"):
        validate_mapping(
            PlateMetaConfig,
            {"user_regex": "(?P<well>[A-H]\\d\\d)", "time_formats": {"stamp": "%Y"}},
            "m.yaml",
        )
    with pytest.raises(ConfigError, match=r"must be 0 or 1|Input should be 0 or 1"):
        validate_mapping(
            PlateMetaConfig,
            {"user_regex": "(?P<well>[A-H]\\d\\d)", "index_base": {"field": 2}},
            "m.yaml",
        )
    with pytest.raises(ConfigError, match="apply to user_regex"):
        validate_mapping(PlateMetaConfig, {"index_base": {"field": 0}}, "m.yaml")


def test_examples_are_checked_at_startup() -> None:
    rx = r"(?:^|/)(?P<plate>\w+?)_(?P<well>[A-H]\d\d)\.tif$"
    ok = validate_mapping(PlateMetaConfig, {"user_regex": rx, "examples": ["P1_A01.tif"]}, "m.yaml")
    assert ok.examples == ["P1_A01.tif"]
    with pytest.raises(ConfigError, match="do not resolve to a well") as info:
        validate_mapping(PlateMetaConfig, {"user_regex": rx, "examples": ["P1-A01.tif"]}, "m.yaml")
    assert "P1-A01.tif" in str(info.value)


def test_explain_shows_each_source_and_the_result() -> None:
    lines = explain(ROOT / "Plate1_B03_T0001F001L01A01Z01C01.tif")
    text = "\n".join(lines)
    assert "preset cellvoyager-cv7000: plate=Plate1, well=B03" in text
    assert text.splitlines()[-1].startswith("  => plate Plate1, well B03, field 1, timepoint 1")
    bad = explain(ROOT / "W0025F0001T0001Z001C1.tif")
    assert "not placed" in bad[-1] and "well_columns" in bad[-1]


def test_conflicting_presets_place_nowhere() -> None:
    rx = r"(?:^|/)[^/]*_(?P<well>[A-H]\d\d)_T\d{4}[^/]*$"  # reads the same name differently
    path = ROOT / "Plate1_B03_T0001F001L01A01Z01C01.tif"
    assert resolve(path, user_regex=rx, use_mtime=False).well == "B03"  # agreeing is fine
    other = ROOT / "Plate1_B03_T0001F001L01A01Z01C01.tif"
    with pytest.raises(UnresolvedImageError, match="conflicting well evidence"):
        resolve(other, user_regex=r"(?:^|/)Plate(?P<well_index>\d)_", well_columns=12,
                use_mtime=False)  # fmt: skip


# -- channels, outputs and formats by name ---------------------------------------------------------


def test_channel_selection_by_number_or_name() -> None:
    loc = resolve(ROOT / "InCell_P3/A - 01(fld 2 wv Blue - FITC).tif", use_mtime=False)
    assert channel_excluded(loc, None) is None
    assert channel_excluded(loc, ["blue - fitc"]) is None
    assert "not among plate.channels" in (channel_excluded(loc, ["1"]) or "")
    cv = resolve(ROOT / "Plate1_B03_T0001F001L01A01Z01C02.tif", use_mtime=False)
    assert channel_excluded(cv, ["2"]) is None
    cfg = validate_mapping(PlateMetaConfig, {"channels": [1, "Ph"]}, "m.yaml")
    assert cfg.channels == ["1", "Ph"]  # numbers in YAML are fine


@pytest.mark.parametrize(
    "name",
    [
        "P1_A01_1_mask.tif",
        "P1_A01_Probabilities.tiff",
        "A1_02_1_1_Bright Field_001_Probabilities.h5",
        "P1_A01_outlines.png",
        "Plate1_A01_s1_w1_thumb8E4B3B5C-1234-4ABC-9DEF-0123456789AB.tif",
        "MiaPaCa2-PhaseMasked_A2_1_03d06h40m.tif",
        "flatfield_ch1.tif",
        "illum_correction_DNA.tif",
        "070314_TDS_VSV_50K_P2_1_B02f0d0_SegmentedCells.png",
        "masks/P1_A01_1_2026y01m05d_09h00m.tif",
        "P1_A01_background.tif",
    ],
)
def test_analysis_outputs_are_recognised_by_name(name: str) -> None:
    assert non_image_output(name) is not None
    with pytest.raises(PlateMetadataError):
        resolve(ROOT / name)


@pytest.mark.parametrize(
    "name",
    ["Plate1_B03_T0001F001L01A01Z01C01.tif", "A - 01(fld 2 wv Blue - FITC).tif",
     "VID123_A1_1_2023y05m12d_14h30m.tif", "r02c05f03p01-ch1sk4fk1fl1.tiff",
     "A1_03_1_1_Bright Field_001.tif", "Segment7_A01.tif"],
)  # fmt: skip
def test_images_are_not_taken_for_outputs(name: str) -> None:
    assert non_image_output(name) is None


def test_unsupported_formats_are_named() -> None:
    assert "Nikon ND2" in (unsupported_format("WellA01_ChannelDAPI_Seq0001.nd2") or "")
    assert "HDF5" in (unsupported_format("x.h5") or "")
    assert unsupported_format("x.tif") is None and unsupported_format("x.flex") is None
