"""Kusumoto-style labelling of phase-contrast blocks from paired fluorescence."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import tifffile

from stemwatch.cli import main
from stemwatch.synth.dataset import generate_dataset
from stemwatch.synth.fluorescence import FluorescenceSpec
from trainer.data import read_manifest
from trainer.label import (
    LabelError,
    LabelSettings,
    Located,
    block_labels,
    hours_since_induction,
    label_pairs,
    pair_images,
)
from trainer.threshold import binarise, otsu_threshold

CLASSES = ["undifferentiated", "differentiated"]


def write_pair(tmp: Path, name: str, stained_blocks: set[tuple[int, int]], block: int = 32) -> None:
    rng = np.random.default_rng(0)
    phase = rng.integers(0, 4000, size=(2 * block, 3 * block), dtype=np.uint16)
    fluo = rng.normal(100, 5, size=phase.shape)
    for r, c in stained_blocks:
        fluo[r * block : (r + 1) * block, c * block : c * block + block * 3 // 4] = 900
    (tmp / "phase").mkdir(exist_ok=True)
    (tmp / "fluo").mkdir(exist_ok=True)
    tifffile.imwrite(tmp / "phase" / f"{name}.tif", phase)
    tifffile.imwrite(tmp / "fluo" / f"{name}.tif", fluo.astype(np.uint16))


def test_otsu_separates_two_levels() -> None:
    img = np.concatenate([np.full(100, 10.0), np.full(50, 200.0)])
    t = otsu_threshold(img)
    assert 10 < t < 200
    assert binarise(img, t).sum() == 50
    assert binarise(img, 250.0).sum() == 0


def test_block_labels_follow_white_fraction() -> None:
    mask = np.zeros((4, 6), dtype=bool)
    mask[:2, :2] = True  # block (0,0) fully white
    mask[2:, 2:3] = True  # block (1,1) half white
    assert block_labels(mask, 2, 0.5).tolist() == [[True, False, False], [False, True, False]]
    assert block_labels(mask, 2, 0.6).tolist() == [[True, False, False], [False, False, False]]


def test_label_command_writes_blocks_and_manifest(tmp_path: Path) -> None:
    write_pair(tmp_path, "A01_f1", {(0, 0), (1, 2)})
    out = tmp_path / "labelled"
    rc = main(
        ["label", str(tmp_path / "phase"), str(tmp_path / "fluo"), "-o", str(out),
         "--block-size", "32", "--stained-fraction", "0.5"]
    )  # fmt: skip
    assert rc == 0
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert len(rows) == 6
    stained = sorted(r["path"] for r in rows if r["label"] == "differentiated")
    assert stained == ["differentiated/A01_f1_r00_c00.tif", "differentiated/A01_f1_r01_c02.tif"]
    samples = read_manifest(out / "manifest.csv", CLASSES)  # the trainer reads it
    assert len({s.group("well") for s in samples}) == 1  # blocks of one image stay together
    block = tifffile.imread(out / rows[0]["path"])
    src = tifffile.imread(tmp_path / "phase" / "A01_f1.tif")
    assert block.shape == (32, 32) and np.array_equal(block, src[:32, :32])


def test_missing_fluorescence_partner_is_named(tmp_path: Path) -> None:
    write_pair(tmp_path, "A01_f1", set())
    (tmp_path / "fluo" / "A01_f1.tif").rename(tmp_path / "fluo" / "A01_f2.tif")
    with pytest.raises(LabelError, match=r"no fluorescence image.*\['A01_f1'\]"):
        pair_images(tmp_path / "phase", tmp_path / "fluo")


def test_size_mismatch_is_an_error(tmp_path: Path, capsys) -> None:
    write_pair(tmp_path, "A01_f1", set())
    tifffile.imwrite(tmp_path / "fluo" / "A01_f1.tif", np.zeros((10, 10), np.uint16))
    rc = main(["label", str(tmp_path / "phase"), str(tmp_path / "fluo"), "-o", str(tmp_path / "o")])
    assert rc == 2
    assert "fluorescence is 10x10 px but A01_f1.tif is 96x64 px" in capsys.readouterr().err


def write_truth(
    tmp: Path, name: str, stained_blocks: set[tuple[int, int]], block: int = 32
) -> None:
    mask = np.ones((2 * block, 3 * block), np.uint8)  # cells everywhere, none stained ...
    for r, c in stained_blocks:  # ... except these blocks, covered by stained cells
        mask[r * block : (r + 1) * block, c * block : (c + 1) * block] = 2
    (tmp / "truth").mkdir(exist_ok=True)
    tifffile.imwrite(tmp / "truth" / f"{name}.tif", mask)


def test_ground_truth_report_counts_errors_and_positives_from_unstained_fields(
    tmp_path: Path,
) -> None:
    # A01: stain where the truth is, one true block missed (faint) -> 1 false negative
    write_pair(tmp_path, "A01_f1", {(0, 0)})
    write_truth(tmp_path, "A01_f1", {(0, 0), (1, 1)})
    # A02: no stained cell at all, but one block glows (autofluorescence) -> 1 false positive
    write_pair(tmp_path, "A02_f1", {(1, 2)})
    write_truth(tmp_path, "A02_f1", set())
    pairs = pair_images(tmp_path / "phase", tmp_path / "fluo", truth_dir=tmp_path / "truth")
    assert [p.truth is not None for p in pairs] == [True, True]
    result = label_pairs(pairs, tmp_path / "out", LabelSettings(block_size=32))
    assert result.truth is not None and result.truth_counts is not None
    assert result.truth_counts["blocks"] == 12
    assert result.truth_counts["false_negative"] == 1
    assert result.truth_counts["false_positive"] == 1
    assert result.truth["block_accuracy"].value == pytest.approx(10 / 12)
    assert result.truth["recall"].value == pytest.approx(1 / 2)
    assert result.truth["precision"].value == pytest.approx(1 / 2)
    assert result.truth_counts["positives_from_unstained_fields"] == 1
    assert result.truth["positives_from_unstained_fields"].value == pytest.approx(1 / 2)
    rows = list(csv.DictReader(result.manifest.open()))
    a02 = [r for r in rows if r["source_image"] == "A02_f1.tif"]
    assert {r["field_has_stained_cell"] for r in a02} == {"0"}
    assert {r["threshold_method"] for r in rows} == {"otsu"}
    report = (tmp_path / "out" / "label_report.json").read_text()
    assert '"positives_from_unstained_fields"' in report


def test_without_truth_there_is_no_accuracy(tmp_path: Path) -> None:
    write_pair(tmp_path, "A01_f1", {(0, 0)})
    pairs = pair_images(tmp_path / "phase", tmp_path / "fluo")
    result = label_pairs(pairs, tmp_path / "o", LabelSettings(block_size=32))
    assert result.truth is None
    assert {r["truth_label"] for r in csv.DictReader(result.manifest.open())} == {""}


def test_hours_since_induction_from_dates_and_elapsed_time() -> None:
    t0 = 1_767_600_000.0
    located = [
        Located("P1", "A01", "1", t0 + 6 * 3600, "epoch"),
        Located("P1", "A01", "1", t0, "epoch"),
        Located("P2", "A01", "1", t0 + 100 * 3600, "epoch"),  # its own plate's first image
        Located("P3", "A01", "1", 30 * 3600, "elapsed"),
        Located("P4", "A01", "1", None, None),
    ]
    hours, how = hours_since_induction(located, 0.0)
    assert hours == [6.0, 0.0, 0.0, 30.0, None]
    assert "first image of each plate" in how and "elapsed" in how
    hours, how = hours_since_induction(located, 2.0)
    assert hours == [4.0, -2.0, -2.0, 28.0, None]
    assert "minus 2 h" in how


def test_synthetic_pairs_label_end_to_end(tmp_path: Path, capsys) -> None:
    """`synth dataset --fluorescence` then `label`: plate/well/field/hours from the OME-TIFFs,
    the rule per block, and the labels' accuracy against the generator's ground truth."""
    data = tmp_path / "data"
    generate_dataset(
        data,
        n_experiments=1,
        wells_per_class=1,
        fields_per_well=1,
        timepoints_h=(0, 48),
        size=128,
        seed=3,
        fluorescence=FluorescenceSpec(autofluorescence_rate=0.0, faint_rate=0.0),
    )
    out = tmp_path / "labelled"
    rc = main(
        ["label", str(data), str(data / "fluorescence"), "-o", str(out), "--block-size", "64"]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "block accuracy" in printed
    assert "stained blocks from fields with no stained cell: 0 of" in printed
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert len(rows) == 4 * 4
    assert {(r["plate"], r["well"], r["field"]) for r in rows} == {
        ("SYN003E01", "A01", "1"),
        ("SYN003E01", "B01", "1"),
    }
    assert {r["hours_since_induction"] for r in rows} == {"0", "48"}
    assert {r["source"] for r in rows} == {"stemwatch synth"}
    assert {r["experiment"] for r in rows} == {"E01"}
    assert all(r["threshold_method"] in ("otsu", "control") for r in rows)  # control/ found
    assert all(r["truth_label"] for r in rows)
    # maintenance wells have no stained cell, so no block of theirs is labelled stained
    assert not [r for r in rows if r["well"] == "A01" and r["label"] == "differentiated"]
    assert [r for r in rows if r["truth_label"] == "differentiated"]  # induced at 48 h: some
    samples = read_manifest(out / "manifest.csv", CLASSES)
    assert {s.hours for s in samples} == {0.0, 48.0}
