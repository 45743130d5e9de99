"""Synthetic plates: OME-TIFF plate metadata, instrument names, bit depths, ground truth."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import tifffile

from stemwatch.core.imaging import read_image
from stemwatch.core.platemeta import resolve
from stemwatch.synth.biology import ONSET_THRESHOLD, well_mean_state
from stemwatch.synth.difficulty import SynthError
from stemwatch.synth.plate import PlateTruth, generate_plate, plan_plate
from stemwatch.synth.spec import PlateSpec

PLATE16 = PlateSpec(wells=["A01", "A02", "B03"], n_fields=2, n_timepoints=3, size=96, seed=4)

OME = "{http://www.openmicroscopy.org/Schemas/OME/2016-06}"


@pytest.fixture(scope="module")
def plate16(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PlateTruth]:
    out = tmp_path_factory.mktemp("plate16")
    return out, generate_plate(out, PLATE16)


def test_files_are_ome_tiff_with_plate_elements(plate16: tuple[Path, PlateTruth]) -> None:
    out, truth = plate16
    assert len(truth.files) == 3 * 2 * 3
    path = out / "SYN001_B3_2_2026y01m05d_21h00m.tif"  # well B03, field 2, 12 h after 09:00
    assert path in truth.files
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome
        xml = tif.ome_metadata
        assert xml is not None
        assert tif.pages[0].dtype == np.uint16
    root = ET.fromstring(xml)
    plate = root.find(f"{OME}Plate")
    assert plate is not None and plate.get("Name") == "SYN001"
    assert (plate.get("Rows"), plate.get("Columns")) == ("2", "3")  # smallest fitting: 6-well
    well = plate.find(f"{OME}Well")
    assert well is not None and (well.get("Row"), well.get("Column")) == ("1", "2")
    sample = well.find(f"{OME}WellSample")
    assert sample is not None and sample.get("Index") == "1"
    ref = sample.find(f"{OME}ImageRef")
    assert ref is not None and ref.get("ID") == "Image:0"
    plane = root.find(f"{OME}Image/{OME}Pixels/{OME}Plane")
    assert plane is not None and float(plane.get("DeltaT", "nan")) == 12 * 3600.0


def test_platemeta_resolves_ome_and_file_name_alike(plate16: tuple[Path, PlateTruth]) -> None:
    out, _ = plate16
    path = out / "SYN001_B3_2_2026y01m05d_21h00m.tif"
    data = read_image(path)
    by_ome = resolve(path, ome_xml=data.ome_xml)
    by_name = resolve(path, presets=["incucyte"])
    assert by_ome.source.startswith("ome")
    for loc in (by_ome, by_name):
        assert (loc.plate, loc.well, loc.field) == ("SYN001", "B03", 2)
    assert by_ome.time_s == by_name.time_s
    first = out / "SYN001_B3_2_2026y01m05d_09h00m.tif"
    t0 = resolve(first, ome_xml=read_image(first).ome_xml).time_s
    assert by_ome.time_s is not None and t0 is not None
    assert by_ome.time_s - t0 == 12 * 3600.0


def test_sixteen_bit_output_holds_twelve_bit_data(plate16: tuple[Path, PlateTruth]) -> None:
    _, truth = plate16
    img = tifffile.imread(truth.files[0])
    assert img.dtype == np.uint16
    assert 0 < img.max() <= 4095
    assert read_image(truth.files[0]).bit_depth == 12


def test_eight_bit_output_and_compression(tmp_path: Path) -> None:
    spec = PlateSpec(
        wells=["A01"], n_fields=1, n_timepoints=1, size=64, bit_depth=8, compression="zlib"
    )
    truth = generate_plate(tmp_path, spec)
    (path,) = truth.files
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert page.dtype == np.uint8
        assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
    img = tifffile.imread(path)
    assert img.std() > 1.0  # not flat


def test_ground_truth_table_matches_the_biology(plate16: tuple[Path, PlateTruth]) -> None:
    out, truth = plate16
    with (out / "ground_truth.csv").open() as fh:
        rows = {r["well"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"A01", "A02", "B03"}
    for w in truth.wells:
        row = rows[w.well]
        assert row["condition"] == w.condition
        if w.condition == "maintenance":
            assert row["induction_h"] == "" and row["true_onset_h"] == ""
        else:
            assert w.induction_h is not None
            assert float(row["induction_h"]) == w.induction_h
            assert w.true_onset_h is not None and w.true_onset_h > w.induction_h
            assert float(row["true_onset_h"]) == pytest.approx(w.true_onset_h)
    # the onset is where the mean colony state crosses the threshold
    plan = plan_plate(PLATE16)
    for name, well in plan.wells.items():
        onset = truth.well(name).true_onset_h
        if onset is not None:
            assert well_mean_state(well, onset) >= ONSET_THRESHOLD
            assert well_mean_state(well, onset - 0.5) < ONSET_THRESHOLD


def test_plate_formats_and_conditions() -> None:
    for n, (rows, cols) in {6: (2, 3), 24: (4, 6), 96: (8, 12), 384: (16, 24)}.items():
        plan = plan_plate(PlateSpec(wells=n, n_fields=1, n_timepoints=2, size=64))
        assert (plan.n_rows, plan.n_cols, len(plan.wells)) == (rows, cols, n)
        conds = {plan.wells[w].condition for w in plan.wells}
        assert conds == {"maintenance", "induced"}
    plan = plan_plate(PlateSpec(wells=384, n_fields=1, n_timepoints=2, size=64))
    assert plan.filename("P24", 0, 1) == "SYN001_P24_1_2026y01m05d_15h00m.tif"


def test_maintenance_stays_undifferentiated_and_induced_differentiates() -> None:
    plan = plan_plate(PlateSpec(wells=24, n_fields=2, times_h=(0, 48, 96), size=128, seed=1))
    maint = [w for w in plan.wells.values() if w.condition == "maintenance"]
    induced = [w for w in plan.wells.values() if w.condition == "induced"]
    assert max(well_mean_state(w, 96) for w in maint) < 0.25  # only a few spontaneous colonies
    assert all(well_mean_state(w, 0) == 0 for w in induced)
    late = [well_mean_state(w, w.induction_h + 48) for w in induced if w.induction_h is not None]
    assert min(late) > 0.6


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    spec = PlateSpec(wells=["A01", "A02"], n_fields=1, n_timepoints=2, size=64, seed=7)
    a = generate_plate(tmp_path / "a", spec)
    b = generate_plate(tmp_path / "b", spec)
    c = generate_plate(tmp_path / "c", spec.replace(seed=8))
    for fa, fb, fc in zip(a.files, b.files, c.files, strict=True):
        assert fa.name == fb.name == fc.name
        assert fa.read_bytes() == fb.read_bytes()
        assert fa.read_bytes() != fc.read_bytes()
    assert a.ground_truth_csv.read_bytes() == b.ground_truth_csv.read_bytes()


def test_parallel_workers_write_the_same_bytes(tmp_path: Path) -> None:
    spec = PlateSpec(wells=["A01", "A02"], n_fields=2, n_timepoints=1, size=64, seed=2)
    one = generate_plate(tmp_path / "one", spec)
    two = generate_plate(tmp_path / "two", spec, workers=2)
    assert [f.read_bytes() for f in one.files] == [f.read_bytes() for f in two.files]


def test_stage_drift_moves_the_field_between_time_points() -> None:
    plan = plan_plate(PlateSpec(wells=["A01"], n_fields=1, n_timepoints=4, size=64, seed=3))
    origins = [plan.origin("A01", 0, t) for t in range(4)]
    assert len(set(origins)) == 4
    assert all(abs(o[0]) < 40 and abs(o[1]) < 40 for o in origins)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"wells": 97}, "wells=97"),
        ({"wells": ["Z99"]}, "wells"),
        ({"bit_depth": 12}, "bit_depth=12"),
        ({"size": 8}, "size=8"),
        ({"n_fields": 0}, "n_fields=0"),
        ({"n_timepoints": 0}, "n_timepoints=0"),
        ({"interval_h": 0.0}, "interval_h=0.0"),
        ({"induced": ["A1", "nope"]}, "induced: 'nope'"),
        ({"difficulty": "nightmare"}, "nightmare"),
    ],
)
def test_bad_requests_name_the_value(tmp_path: Path, kwargs: dict, needle: str) -> None:
    with pytest.raises(SynthError, match=needle):
        generate_plate(tmp_path, PlateSpec(**{"n_timepoints": 1, "n_fields": 1, **kwargs}))
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_a_spec_is_immutable_and_takes_lists() -> None:
    spec = PlateSpec(wells=["a1", "B3"], times_h=[0, 6], induced=["b03"])
    assert spec.wells == ("A01", "B03") and spec.times_h == (0.0, 6.0)
    assert spec.induced == ("B03",) and spec.timeline_h == (0.0, 6.0)
    assert hash(spec) == hash(PlateSpec(wells=("A01", "B03"), times_h=(0, 6), induced=("B03",)))
    assert PlateSpec(n_timepoints=3, interval_h=2.5).timeline_h == (0.0, 2.5, 5.0)
    with pytest.raises(SynthError, match="size=8"):
        spec.replace(size=8)
