"""bioimage.io package of an exported model: validates and passes bioimageio.core's test."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from stemwatch.cli import main
from stemwatch.core.imaging import prepare, read_image
from stemwatch.core.modelfile import read_metadata
from stemwatch.synth.dataset import generate_dataset
from trainer.bioimageio_package import PackageError, package_name, write_bioimageio_package
from trainer.export import export_onnx, synthetic_tiles

pytestmark = pytest.mark.slow

bioimageio_core = pytest.importorskip(
    "bioimageio.core",
    reason="bioimageio is not installed: pip install -e '.[bioimageio]' && "
    "pip install --no-deps bioimageio.spec==0.5.14.3",
)


def test_bioimageio_spec_is_the_one_that_reads_our_package():
    from bioimageio.spec import __version__ as spec_version

    assert spec_version == "0.5.14.3", (
        f"bioimageio.spec {spec_version} is installed (bioimageio.core pins 0.5.12.0); run "
        "pip install --no-deps bioimageio.spec==0.5.14.3"
    )


@pytest.fixture(scope="module")
def onnx_model(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bioimageio") / "fastnet_bio.onnx"
    export_onnx(tiny_checkpoint, out)
    return out


def test_package_validates_and_passes_test_model(onnx_model: Path, tmp_path: Path):
    from bioimageio.spec import load_description

    rdf = write_bioimageio_package(
        onnx_model, tmp_path / "pkg", test_tile=synthetic_tiles(1, 1, 64, seed=3)
    )
    content = yaml.safe_load(rdf.read_text())
    assert content["format_version"].startswith("0.5.")
    assert [o["id"] for o in content["outputs"]] == ["probabilities", "logits", "cam"]
    assert {c["doi"] for c in content["cite"]} == {
        "10.1016/j.stemcr.2019.02.004",
        "10.1016/j.stemcr.2018.04.007",
    }
    assert content["config"]["stemwatch"]["temperature"] == 1.5
    assert "# fastnet_bio" in (rdf.parent / "README.md").read_text()

    descr = load_description(rdf)
    assert descr.validation_summary.status == "valid-format", descr.validation_summary.format()
    summary = bioimageio_core.test_model(rdf)
    assert summary.status == "passed", summary.format()


def test_test_model_fails_on_wrong_expected_output(onnx_model: Path, tmp_path: Path):
    rdf = write_bioimageio_package(
        onnx_model, tmp_path / "pkg", test_tile=synthetic_tiles(1, 1, 64, seed=3)
    )
    wrong = rdf.parent / "test_output_probabilities.npy"
    np.save(wrong, 1.0 - np.load(wrong))
    content = yaml.safe_load(rdf.read_text())
    content["outputs"][0]["test_tensor"]["sha256"] = hashlib.sha256(wrong.read_bytes()).hexdigest()
    rdf.write_text(yaml.safe_dump(content, sort_keys=False))
    summary = bioimageio_core.test_model(rdf)
    assert summary.status != "passed"
    failed = [(d.name, [e.msg for e in d.errors]) for d in summary.details if d.status == "failed"]
    assert "Output 'probabilities'" in str(failed), failed


def test_cli_writes_package_beside_the_model(tiny_checkpoint: Path, tmp_path: Path):
    out = tmp_path / "cli_model.onnx"
    assert main(["export", str(tiny_checkpoint), "-o", str(out), "--bioimageio"]) == 0
    rdf = tmp_path / "cli_model.bioimageio" / "rdf.yaml"
    content = yaml.safe_load(rdf.read_text())
    assert content["weights"]["onnx"]["source"] == "cli_model.onnx"
    assert (rdf.parent / "cli_model.onnx").read_bytes() == out.read_bytes()


def test_test_tile_of_the_wrong_size_is_refused(onnx_model: Path, tmp_path: Path):
    with pytest.raises(PackageError, match=r"shape \(1, 1, 32, 32\).*needs \(1, 1, 64, 64\)"):
        write_bioimageio_package(onnx_model, tmp_path / "pkg", test_tile=np.zeros((1, 1, 32, 32)))


def test_package_name_validates() -> None:
    assert package_name("mine") == "stemwatch-mine"  # the README's models/mine.onnx
    assert package_name("fastnet_bio") == "fastnet_bio"
    assert package_name("my model: v2!") == "my model- v2"
    assert package_name("ü") == "stemwatch-model"
    assert 5 <= len(package_name("x" * 300)) <= 64


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's path in miniature: a synthetic set, `stemwatch train` with the default
    (automatic) downsampling, 2 epochs."""
    root = tmp_path_factory.mktemp("readme-path")
    manifest = generate_dataset(
        root / "data", n_experiments=1, wells_per_class=3, fields_per_well=1,
        timepoints_h=(0, 24, 48), size=128, seed=2,
    )  # fmt: skip
    (root / "t.yaml").write_text(
        "data: {tiling: {tile_size: 32, max_tiles: 8}}\n"
        "split: {test_fraction: 0.34, val_fraction: 0.3}\n"
        "optim: {epochs: 2, batch_size: 16}\n"
        "runtime: {threads: 1, progress: false}\n"
    )
    argv = ["train", "--config", str(root / "t.yaml"), str(manifest), "-o", str(root / "run")]
    assert main(argv) == 0
    return root / "run"


def test_a_freshly_exported_package_of_a_small_run_passes_test_model(
    small_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's done-when: export --bioimageio validates with bioimageio.core itself."""
    out = tmp_path / "models" / "mine.onnx"
    assert main(["export", str(small_run / "best.pt"), "-o", str(out), "--bioimageio"]) == 0
    assert "test_model: passed" in capsys.readouterr().out
    pkg = tmp_path / "models" / "mine.bioimageio"
    rdf = yaml.safe_load((pkg / "rdf.yaml").read_text())
    assert rdf["name"] == "stemwatch-mine"
    assert "Trained on synthetic images only" in rdf["description"]
    assert len(rdf["description"]) <= 512
    (inp,) = rdf["inputs"]
    assert [p["id"] for p in inp["preprocessing"]] == ["ensure_dtype", "clip"]
    assert inp["data"]["range"] == [0.0, 1.0]
    assert {a["source"] for a in rdf["attachments"]} == {
        "stemwatch_recipe.json",
        "sample_image.tif",
    }
    # the attached raw image, prepared by the recipe, gives exactly the test input
    meta = read_metadata(out)
    tiles = prepare(read_image(pkg / "sample_image.tif").pixels, meta.normalisation, meta.tiling)
    np.testing.assert_array_equal(tiles.data[:1], np.load(pkg / "test_input.npy"))
    recipe = json.loads((pkg / "stemwatch_recipe.json").read_text())
    assert recipe["tiling"]["downsample"] == 2 and recipe["training_pixel_size_um"] == 1.0
    card = (pkg / "README.md").read_text()
    assert "**Trained on synthetic images only**" in card
    assert "one lab's imaging conditions" not in card
    test_metrics = meta.metrics["test"]  # held-out figures, not validation-epoch ones
    ba = test_metrics["figures"]["balanced_accuracy"]
    assert f"| balanced accuracy | {ba['value']:.3f} [{ba['low']:.3f}, {ba['high']:.3f}] |" in card
    assert "balanced accuracy from this hour on [95 % CI]" in card  # as `stemwatch evaluate`
    assert "## Validation (early stopping and calibration: not an accuracy estimate)" in card
    assert "cannot express" in card
    summary = bioimageio_core.test_model(pkg / "rdf.yaml")
    assert summary.status == "passed", summary.format()


def test_a_package_that_fails_validation_fails_the_export(
    small_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import trainer.bioimageio_package as package

    def too_loose(name: str, value: np.ndarray) -> dict[str, object]:  # what bioimage.io refuses
        return {"output_ids": [name], "weights_formats": ["onnx"], "absolute_tolerance": 1e3}

    monkeypatch.setattr(package, "_tolerance", too_loose)
    out = tmp_path / "m.onnx"
    assert main(["export", str(small_run / "best.pt"), "-o", str(out), "--bioimageio"]) == 1
    err = capsys.readouterr().err
    assert "does not pass bioimageio.core's test_model; it is kept for inspection" in err
    assert "absolute_tolerance" in err
    assert (tmp_path / "m.bioimageio" / "VALIDATION_FAILED.txt").is_file()
    assert out.is_file()  # the ONNX file itself passed its parity check
