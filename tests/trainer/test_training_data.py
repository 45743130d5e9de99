"""Data loading: manifests, class folders, the tile cache and every kind of bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import tifffile

from stemwatch.core.imaging import NormalisationRecipe, TilingSpec
from tests.trainer.fixtures_training import CLASSES, make_dataset, texture
from trainer.data import DataError, TileCache, load_samples, read_manifest, scan_folder

TILING = TilingSpec(downsample=2, tile_size=32, max_tiles=4)


def test_manifest_rows_become_samples_with_groups(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path, wells_per_class=2, fields=1, hours=(0.0, 12.0))
    samples = read_manifest(manifest, CLASSES)
    assert len(samples) == 8
    first = samples[0]
    assert first.path.is_file() and first.label == 0 and first.well == "A01"
    assert first.group("well") == "exp0/P1/A01"
    assert first.group("plate") == "exp0/P1"
    assert {s.hours for s in samples} == {0.0, 12.0}


def test_tiles_inherit_label_and_image_index(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path, wells_per_class=1, fields=1, hours=(0.0,))
    samples = read_manifest(manifest, CLASSES)
    cache = TileCache(TILING, NormalisationRecipe())
    tiles = cache.tileset(samples)
    assert tiles.x.shape == (8, 1, 32, 32)  # 128 px / 2 = 64 px -> 4 tiles per image
    assert tiles.y.tolist() == [0] * 4 + [1] * 4
    assert tiles.image.tolist() == [0] * 4 + [1] * 4
    assert tiles.x.min() >= 0.0 and tiles.x.max() <= 1.0


def test_cache_decodes_each_image_once(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path, wells_per_class=1, fields=1, hours=(0.0,))
    samples = read_manifest(manifest, CLASSES)
    cache = TileCache(TILING, NormalisationRecipe())
    a = cache.tiles(samples[0].path)
    samples[0].path.unlink()  # a second read would fail
    assert cache.tiles(samples[0].path) is a


def test_class_folders_are_scanned(tmp_path: Path) -> None:
    make_dataset(tmp_path, wells_per_class=1, fields=1, hours=(0.0,))
    samples = scan_folder(tmp_path, CLASSES)
    assert sorted(s.label for s in samples) == [0, 1]


def test_one_class_folder_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "undifferentiated").mkdir()
    tifffile.imwrite(
        tmp_path / "undifferentiated" / "a.tif", texture(0, 64, np.random.default_rng())
    )
    with pytest.raises(DataError, match=r"only class 'undifferentiated'.*differentiated"):
        load_samples(manifest=None, folder=tmp_path, classes=CLASSES)


def test_unknown_class_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "undifferentiated").mkdir()
    (tmp_path / "mesoderm").mkdir()
    with pytest.raises(DataError, match=r"\['mesoderm'\] do not match"):
        scan_folder(tmp_path, CLASSES)


def test_empty_manifest_is_rejected(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\n")
    with pytest.raises(DataError, match=r"m\.csv: manifest is empty"):
        read_manifest(manifest, CLASSES)


def test_manifest_without_label_column(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,class\na.tif,x\n")
    with pytest.raises(DataError, match=r"lacks column\(s\) \['label'\]"):
        read_manifest(manifest, CLASSES)


def test_labels_that_do_not_match_are_listed(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path, wells_per_class=1, fields=1, hours=(0.0,))
    rows = list(csv.DictReader(manifest.open()))
    rows[0]["label"] = "Differentiated "
    rows[1]["label"] = "neuron"
    with manifest.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(DataError, match=r"manifest\.csv: labels \['Differentiated', 'neuron'\]"):
        read_manifest(manifest, CLASSES)


def _corrupt(samples_paths: list[Path], n: int) -> list[Path]:
    for p in samples_paths[:n]:
        p.write_bytes(b"II*\x00garbage")
    return samples_paths[:n]


def test_unreadable_images_are_listed_and_skipped(tmp_path: Path, caplog) -> None:
    manifest = make_dataset(tmp_path, wells_per_class=2, fields=2, hours=(0.0, 6.0, 12.0))
    samples = read_manifest(manifest, CLASSES)
    (bad,) = _corrupt([s.path for s in samples], 1)
    cache = TileCache(TILING, NormalisationRecipe())
    good = cache.warm(samples, max_unreadable_fraction=0.1)
    assert len(good) == len(samples) - 1
    assert str(bad) in caplog.text


def test_too_many_unreadable_images_stop_the_run(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path, wells_per_class=2, fields=1, hours=(0.0,))
    samples = read_manifest(manifest, CLASSES)
    bad = _corrupt([s.path for s in samples], 2)
    cache = TileCache(TILING, NormalisationRecipe())
    with pytest.raises(DataError, match=r"2 of 4 images \(50%\) cannot be read") as err:
        cache.warm(samples, max_unreadable_fraction=0.25)
    assert str(bad[0]) in str(err.value)
