"""Kusumoto-style labelling of phase-contrast blocks from paired fluorescence."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import tifffile

from stemwatch.cli import main
from trainer.data import read_manifest
from trainer.label import LabelError, binarise, block_labels, otsu_threshold, pair_images

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
    assert binarise(img, None).sum() == 50
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
