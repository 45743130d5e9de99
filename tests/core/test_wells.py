"""The one well grid: names, rows, plate formats (used by platemeta, synth and dashboard)."""

from __future__ import annotations

import pytest

from stemwatch.core.wells import (
    PLATE_FORMATS,
    PlateLayout,
    infer_layout,
    normalise_well,
    parse_well,
    plate_format,
    row_label,
    well_from_index,
)


@pytest.mark.parametrize(
    ("text", "well"),
    [("A1", "A01"), ("a1", "A01"), ("A01", "A01"), ("h12", "H12"), ("P24", "P24"),
     ("AF48", "AF48"), ("aa1", "AA01"), (" B 3 ", "B03")],
)  # fmt: skip
def test_normalise_well(text: str, well: str) -> None:
    assert normalise_well(text) == well


@pytest.mark.parametrize(
    "bad", ["", "A", "1A", "A0", "A49", "AG1", "AH01", "ABC1", "A-1", "B-1", "ZZ2"]
)
def test_names_that_are_not_wells_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="well"):
        parse_well(bad)
    with pytest.raises(ValueError, match="well"):
        normalise_well(bad)


def test_parse_well_and_well_from_index_are_inverse() -> None:
    assert parse_well("B03") == (1, 2) and parse_well("AA1") == (26, 0)
    assert well_from_index(0, 0) == "A01" and well_from_index(7, 11) == "H12"
    assert well_from_index(15, 23) == "P24" and well_from_index(26, 47) == "AA48"
    assert well_from_index(31, 0) == "AF01"
    for rows, cols in PLATE_FORMATS.values():
        for r in range(rows):
            for c in range(cols):
                assert parse_well(well_from_index(r, c)) == (r, c)
    with pytest.raises(ValueError):
        well_from_index(-1, 0)


def test_row_labels() -> None:
    assert row_label(0) == "A" and row_label(25) == "Z" and row_label(26) == "AA"
    assert PlateLayout(16, 24).row_labels()[-1] == "P"


@pytest.mark.parametrize(
    ("wells", "shape"),
    [
        ([], (8, 12)),
        (["A01", "B03"], (2, 3)),
        (["A01", "B04"], (3, 4)),
        (["H12"], (8, 12)),
        (["A13"], (16, 24)),
        (["P24", "A01"], (16, 24)),
        (["AF48"], (32, 48)),
    ],
)
def test_layout_is_the_smallest_standard_plate_holding_the_wells(
    wells: list[str], shape: tuple[int, int]
) -> None:
    layout = infer_layout(wells)
    assert (layout.rows, layout.cols) == shape


def test_plate_formats_and_names() -> None:
    assert plate_format(96) == PlateLayout(8, 12) and PlateLayout(8, 12).name == "96-well"
    assert plate_format(24).wells()[:2] == ["A01", "A02"] and len(plate_format(384).wells()) == 384
    assert PlateLayout(1, 2).name == "1x2"
    with pytest.raises(ValueError, match=r"7 wells is not a standard plate format; use one of 6"):
        plate_format(7)
