"""The training-domain description travels with `stemwatch export` and validates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_training import make_dataset
from scipy import ndimage as ndi

from monitor.inference import load_model
from stemwatch.cli import main
from stemwatch.core.imaging import NormalisationRecipe, TilingSpec, prepare, read_image
from stemwatch.core.modelfile import read_metadata
from trainer.architectures import create
from trainer.checkpoint import load_checkpoint, save_checkpoint
from trainer.data import read_manifest
from trainer.domain import DomainError
from trainer.export import export_onnx

CLASSES = ["undifferentiated", "differentiated"]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two experiments x 8 wells x 2 fields x 2 hours of 256-px textures: 64 images."""
    return make_dataset(
        tmp_path_factory.mktemp("domain-data"), n_experiments=2, size=256, hours=(0.0, 24.0)
    )


def checkpoint(path: Path, manifest: Path | None) -> Path:
    """An untrained fastnet checkpoint whose training record names ``manifest`` and a split
    (wells 1-2 of each class train, 3 validate, 4 test), as `stemwatch train` writes it."""
    training: dict[str, object] = {"data_hash": "sha256:untrained"}
    if manifest is not None:
        groups = {s.group("well") for s in read_manifest(manifest, CLASSES)}
        part = {g: {"1": "train", "2": "train", "3": "val", "4": "test"}[g[-1]] for g in groups}
        training["data"] = str(manifest)
        training["split"] = {"group_by": "well"} | {
            p: {"groups": sorted(g for g in groups if part[g] == p)}
            for p in ("train", "val", "test")
        }
    torch.manual_seed(0)
    return save_checkpoint(
        path,
        model=create("fastnet").eval(),
        architecture="fastnet",
        arch_kwargs={},
        class_names=CLASSES,
        positive_class="differentiated",
        tiling=TilingSpec(downsample=2, tile_size=64, max_tiles=8),
        normalisation=NormalisationRecipe(),
        temperature=1.0,
        training=training,
    )


@pytest.fixture(scope="module")
def exported(data: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("domain-export")
    return export_onnx(checkpoint(out / "best.pt", data), out / "model.onnx")


def test_the_description_travels_in_the_model_and_validates(exported) -> None:
    meta = read_metadata(exported.onnx_path)  # through onnxruntime and the version policy
    d = meta.domain
    assert d is not None and d == exported.metadata.domain
    assert d.output_name == "features" and d.features is not None and d.features.dim == 256
    cal = d.calibration
    # fitted on the training wells (1-2: 32 images), calibrated on validation and test (32)
    assert (cal["n_fit_images"], cal["n_calibration_images"]) == (32, 32)
    assert cal["n_fit_tiles"] == 32 * 4 and cal["held_out_by"].startswith("other experiments")
    assert cal["calibration_flagged"] == 0 and d.threshold > cal["calibration_distance"]["max"]
    assert "features" in exported.outputs and "domain described on 128 tiles" in exported.summary()
    raw = json.loads(exported.metadata.to_json())["domain"]
    assert set(raw["statistics"]["mean"]) == {"shape", "float32_b64"}


def test_the_monitor_scores_images_with_it(exported, data: Path) -> None:
    model = load_model(exported.onnx_path)
    assert model.domain is not None
    meta = model.metadata
    ok = prepare(read_image(data / read_manifest(data, CLASSES)[0].path).pixels,
                 meta.normalisation, meta.tiling).data  # fmt: skip
    out = model.infer(ok)
    assert out.features is not None and out.features.shape == (len(ok), 256)
    # the graph's features are what the network's final linear layer reads
    net = load_checkpoint(exported.onnx_path.parent / "best.pt").build_model()
    with torch.no_grad():
        pooled = net.forward_features(torch.from_numpy(ok)).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(out.features, pooled, atol=1e-5)
    assert not model.domain_score(ok, out.features).out_of_domain  # type: ignore[union-attr]
    blurred = ndi.gaussian_filter(read_image(read_manifest(data, CLASSES)[1].path).pixels, 8)
    tiles = prepare(blurred, meta.normalisation, meta.tiling).data
    score = model.domain_score(tiles, model.infer(tiles).features)
    assert score is not None and score.out_of_domain and score.score > 1


def test_no_domain_and_no_data_export_without_one(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = checkpoint(tmp_path / "best.pt", data)
    out = tmp_path / "plain.onnx"
    assert main(["export", str(ckpt), "-o", str(out), "--no-domain"]) == 0
    assert read_metadata(out).domain is None
    assert "no domain description (--no-domain)" in capsys.readouterr().out
    bare = export_onnx(checkpoint(tmp_path / "bare.pt", None), tmp_path / "bare.onnx")
    assert bare.metadata.domain is None and "names no training data" in bare.summary()
    assert load_model(tmp_path / "bare.onnx").domain is None
    assert "features" not in bare.outputs  # the graph outputs them only for the check
    few = make_dataset(tmp_path / "few", wells_per_class=2, fields=1, size=256)
    small = export_onnx(checkpoint(tmp_path / "few.pt", few), tmp_path / "few.onnx")
    assert small.metadata.domain is None
    assert "too few images to describe the training domain" in small.summary()


def test_domain_data_can_be_given_and_missing_data_is_named(data: Path, tmp_path: Path) -> None:
    gone = tmp_path / "gone" / "manifest.csv"  # the training data moved away since
    gone.parent.mkdir()
    shutil.copy(data, gone)
    moved = checkpoint(tmp_path / "best.pt", gone)
    gone.unlink()
    out = tmp_path / "model.onnx"
    with pytest.raises(DomainError) as exc:
        export_onnx(moved, out)
    text = str(exc.value)
    assert "gone/manifest.csv" in text and "--domain-data" in text and "--no-domain" in text
    assert not out.exists()
    report = export_onnx(moved, out, domain_data=data)
    d = report.metadata.domain
    assert d is not None and "split by well" in d.calibration["source"]
    assert d.calibration["n_fit_images"] + d.calibration["n_calibration_images"] == 64
