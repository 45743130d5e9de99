"""Plate maps: tables, plate-designer grids and Incucyte .PlateMap files, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from stemwatch.core.platemap import PlateMapError, read_plate_maps

TABLE = """plate,well,condition,treatment,induction_h,notes,cell line
P1,A1,maintenance,2i+LIF,,edge well,R1
P1,A2,EpiLC,FGF2+ActA,0,,R1
P1,B01,EpiLC,FGF2+ActA,24,,R1
P2,A1,maintenance,2i+LIF,,,E14
"""


def write(tmp_path: Path, text: str, name: str = "map.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_table_with_plates_roles_and_attributes(tmp_path: Path) -> None:
    maps = read_plate_maps(write(tmp_path, TABLE), maintenance=["2i+LIF"])
    assert [m.plate for m in maps] == ["P1", "P2"]
    wells = maps[0].by_well()
    assert sorted(wells) == ["A01", "A02", "B01"]
    a1, a2, b1 = wells["A01"], wells["A02"], wells["B01"]
    assert (a1.role, a1.condition, a1.treatment, a1.notes) == (
        "maintenance",
        "maintenance",
        "2i+LIF",
        "edge well",
    )
    assert a1.attributes == {"cell line": "R1"}
    assert (a2.role, a2.induction_h, a2.induction_basis) == ("induced", 0.0, "elapsed")
    assert b1.induction_h == 24.0 and b1.group("condition") == "EpiLC"
    assert maps[0].attribute_names() == ["cell line"]


def test_table_without_plate_needs_the_plate_option(tmp_path: Path) -> None:
    path = write(tmp_path, "well,condition\nA1,induced\nA2,maintenance\n")
    with pytest.raises(PlateMapError, match="--plate"):
        read_plate_maps(path)
    (m,) = read_plate_maps(path, plate="SYN")
    assert m.plate == "SYN"
    assert [w.role for w in m.wells] == ["induced", "maintenance"]  # literal condition names


def test_roles_from_condition_names_and_a_shared_induction_time(tmp_path: Path) -> None:
    path = write(tmp_path, "well\tcondition\nA1\tmTeSR\nA2\tBMP4\nA3\tother\n")  # tab-separated
    (m,) = read_plate_maps(path, plate="P", induced=["BMP4"], maintenance=["mTeSR"], induction_h=12)
    roles = {w.well: (w.role, w.induction_h) for w in m.wells}
    assert roles == {"A01": ("maintenance", None), "A02": ("induced", 12.0), "A03": (None, None)}
    with pytest.raises(PlateMapError, match="--induced 'BMP7' is no well's condition"):
        read_plate_maps(path, plate="P", induced=["BMP7"])


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("plate,well,condition\nP,A1,x\nP,Z99,y\n", "row 3, column 'well'"),
        ("plate,well,induction_h\nP,A1,soon\n", "row 2, column 'induction_h'"),
        ("plate,well,induction_h\nP,A1,-3\n", "row 2, column 'induction_h'"),
        ("plate,well,role\nP,A1,treated\n", "row 2, column 'role'"),
        ("plate,well\nP,A1\nP,A01\n", "row 3, column 'well'"),  # the same well twice
        ("plate,well,condition\nP,A1,x,stray\n", "row 2, column 4"),
        ("plate,condition\nP,x\n", "row 1: no 'well' column"),
        ("plate,well\nP,A1\n,A2\n", "row 3, column 'plate'"),
        ("plate,well,induction_h,induction_at\nP,A1,3,2026-01-01 09:00\n", "row 2:"),
        ("plate,well,induction_at\nP,A1,tomorrow\n", "row 2, column 'induction_at'"),
    ],
)
def test_malformed_tables_name_row_and_column(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PlateMapError) as exc:
        read_plate_maps(path)
    assert str(path) in str(exc.value) and where in str(exc.value), exc.value


GRID = """condition,1,2,3
A,maintenance,EpiLC,EpiLC
B,maintenance,EpiLC,

induction_h,1,2,3
A,,0,6
B,,12,

density,1,2,3
A,high,high,low
"""


def test_grid_blocks_fill_the_wells(tmp_path: Path) -> None:
    (m,) = read_plate_maps(write(tmp_path, GRID), plate="P7")
    wells = m.by_well()
    assert sorted(wells) == ["A01", "A02", "A03", "B01", "B02"]
    assert (wells["A01"].role, wells["A01"].attributes) == ("maintenance", {"density": "high"})
    assert (wells["A03"].role, wells["A03"].induction_h) == ("induced", 6.0)
    assert wells["B02"].induction_h == 12.0 and wells["B02"].attributes == {}


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("condition,1,2\nA,x,y,z\n", "row 2, column 4"),  # beyond the numbered columns
        ("condition,1,two\nA,x,y\n", "row 1, column 3"),
        ("condition,1,2\nA,x,y\n9,x,y\n", "row 3, column 1"),
        ("induction_h,1,2\nA,x,3\n", "row 2 (A), column 2 (1)"),
        ("condition,1\nA,x\n\ncondition,1\nA,y\n", "row 4, column 1: a second"),
    ],
)
def test_malformed_grids_name_row_and_column(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PlateMapError) as exc:
        read_plate_maps(path, plate="P", fmt="grid")
    assert where in str(exc.value), exc.value


PLATEMAP_XML = """<?xml version="1.0" encoding="utf-8"?>
<plateMap>
  <wellStore>
    <wells>
      <well row="0" col="0" />
      <well row="0" col="1">
        <items>
          <wellItem type="Compound" concentration="10" concentrationUnits="ng/mL">
            <referenceItem type="Compound" description="BMP4" displayName="BMP4" />
          </wellItem>
          <wellItem type="GrowthCondition">
            <referenceItem type="GrowthCondition" description="E6" displayName="E6" />
          </wellItem>
          <wellItem type="CellType" passage="12" seedingDensity="20000">
            <referenceItem type="CellType" description="iPSC line 1" displayName="iPS-1" />
          </wellItem>
        </items>
      </well>
      <well row="1" col="0">
        <items>
          <wellItem type="GrowthCondition">
            <referenceItem type="GrowthCondition" description="mTeSR" displayName="mTeSR" />
          </wellItem>
        </items>
      </well>
    </wells>
  </wellStore>
</plateMap>
"""


def test_incucyte_platemap(tmp_path: Path) -> None:
    path = write(tmp_path, PLATEMAP_XML, "layout.PlateMap")
    (m,) = read_plate_maps(path, plate="INC1", induced=["BMP4 10 ng/mL"], maintenance=["mTeSR"])
    wells = m.by_well()
    assert sorted(wells) == ["A02", "B01"]  # the empty well is left out
    a2 = wells["A02"]
    assert (a2.condition, a2.treatment, a2.role) == ("E6", "BMP4 10 ng/mL", "induced")
    assert a2.attributes == {"cell_type": "iPS-1", "passage": "12", "seeding_density": "20000"}
    assert wells["B01"].role == "maintenance"
    write(tmp_path, "<plateMap><wellStore><wells><well row='x'", "bad.PlateMap")
    with pytest.raises(PlateMapError, match="XML error at line 1"):
        read_plate_maps(tmp_path / "bad.PlateMap", plate="P")


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(PlateMapError, match="not found"):
        read_plate_maps(tmp_path / "nope.csv")
    with pytest.raises(PlateMapError, match="empty"):
        read_plate_maps(write(tmp_path, "\n\n"))


def test_synthetic_ground_truth_is_a_plate_map(tmp_path: Path) -> None:
    """The synthetic microscope's ground truth (plate, well, condition, induction_h) reads as a
    map; its other columns become attributes."""
    from stemwatch.synth.plate import generate_plate
    from stemwatch.synth.spec import PlateSpec

    truth = generate_plate(
        tmp_path / "plate", PlateSpec(wells=["A01", "A02"], n_timepoints=1, size=64, n_fields=1)
    )
    (gt,) = sorted((tmp_path / "plate").rglob("*.csv"))
    (m,) = read_plate_maps(gt)
    assert m.plate == truth.plate
    roles = {w.well: w.role for w in m.wells}
    assert roles == {w.well: w.condition for w in truth.wells}
    assert "true_onset_h" in m.attribute_names()
