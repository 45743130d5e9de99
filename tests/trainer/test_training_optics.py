"""The trainer's downsampling: from the images' pixel size, else asked for, never guessed."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
import tifffile

from stemwatch.core.config import validate_mapping
from stemwatch.synth.dataset import generate_dataset
from tests.trainer.fixtures_training import make_dataset, tiny_config
from trainer.config import TilingConfig, TrainerConfig
from trainer.data import DataError, read_manifest
from trainer.optics import resolve_optics
from trainer.train import prepare_data


def config(manifest: Path, **data: object) -> TrainerConfig:
    cfg = tiny_config(manifest, Path("unused"))
    cfg["data"] = {"manifest": str(manifest), "tiling": {"tile_size": 32}, **data}  # type: ignore[dict-item]
    return validate_mapping(TrainerConfig, cfg, "test")


def with_resolution(manifest: Path, pixel_um: dict[int, float]) -> None:
    """Rewrite images (by row number) with TIFF resolution tags of ``pixel_um``."""
    rows = list(csv.DictReader(manifest.open()))
    for i, um in pixel_um.items():
        path = manifest.parent / rows[i]["path"]
        pixels = tifffile.imread(path)
        res = 10_000 / um  # pixels per centimetre
        tifffile.imwrite(path, pixels, resolution=(res, res), resolutionunit="CENTIMETER")


def test_synthetic_images_state_their_pixel_size_and_give_the_factor(tmp_path: Path) -> None:
    manifest = generate_dataset(
        tmp_path, n_experiments=1, wells_per_class=1, fields_per_well=1, timepoints_h=(0,),
        size=64, pixel_size_um=0.65,
    )  # fmt: skip
    samples = read_manifest(manifest, ["undifferentiated", "differentiated"])
    assert all(s.synthetic for s in samples)
    cfg, record = resolve_optics(config(manifest), samples)
    assert cfg.data.tiling.downsample == 3 and cfg.data.tiling.spec().downsample == 3
    assert record["pixel_size_um"] == pytest.approx(0.65)
    assert record["pixel_size_source"] == "OME PhysicalSizeX"
    assert record["effective_pixel_size_um"] == pytest.approx(1.95)
    assert "round(2 µm target / 0.65 µm" in record["downsample_rule"]


def test_no_pixel_size_and_auto_is_an_error_that_says_what_to_set(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path, wells_per_class=1, fields=1, hours=(0.0,))
    samples = read_manifest(manifest, ["undifferentiated", "differentiated"])
    with pytest.raises(DataError) as err:
        resolve_optics(config(manifest), samples)
    msg = str(err.value)
    assert "do not state their pixel size" in msg and "data.pixel_size_um" in msg
    assert "data.tiling.downsample" in msg and "exp0_P1_A01" in msg
    cfg, record = resolve_optics(config(manifest, pixel_size_um=0.5), samples)
    assert cfg.data.tiling.downsample == 4 and record["pixel_size_source"] == "data.pixel_size_um"
    cfg, record = resolve_optics(config(manifest, tiling={"downsample": 2}), samples)
    assert cfg.data.tiling.downsample == 2 and record["pixel_size_um"] is None
    assert record["downsample_rule"] == "data.tiling.downsample"


def test_mixed_pixel_sizes_are_refused(tmp_path: Path, caplog) -> None:
    manifest = make_dataset(tmp_path, wells_per_class=1, fields=2, hours=(0.0,))
    samples = read_manifest(manifest, ["undifferentiated", "differentiated"])
    with_resolution(manifest, {0: 0.65, 1: 0.65, 2: 0.65})  # the fourth says nothing
    with pytest.raises(DataError, match=r"3 images state a pixel size of 0.65 µm but 1 do not"):
        resolve_optics(config(manifest), samples)
    with_resolution(manifest, {3: 1.3})
    with pytest.raises(DataError, match=r"different pixel sizes \(0.65 µm: 3 images.*1.3 µm: 1"):
        resolve_optics(config(manifest), samples)
    with caplog.at_level(logging.WARNING):  # the user's word wins, with a warning
        cfg, _ = resolve_optics(
            config(manifest, pixel_size_um=1.0, tiling={"downsample": 4}), samples
        )
    assert cfg.data.tiling.downsample == 4
    assert "coarser than the 2 µm" in caplog.text


def test_prepared_data_carries_the_resolved_tiling(tmp_path: Path) -> None:
    manifest = generate_dataset(
        tmp_path, n_experiments=1, wells_per_class=1, fields_per_well=1, timepoints_h=(0,),
        size=128,
    )  # fmt: skip
    data = prepare_data(config(manifest))
    assert data.cfg.data.tiling.downsample == 2 and data.optics["pixel_size_um"] == 1.0
    assert data.cache.tiling.downsample == 2
    x = data.cache.tiles(data.samples[0].path)
    assert x.shape[-1] == 32 and np.isfinite(x).all()


def test_tiling_config_mirrors_the_tiling_spec() -> None:
    from stemwatch.core.imaging import TilingSpec

    assert set(TilingConfig.model_fields) == set(TilingSpec.model_fields)
    assert TilingConfig(downsample=3).spec() == TilingSpec(downsample=3)
    with pytest.raises(ValueError, match="still 'auto'"):
        TilingConfig().spec()
