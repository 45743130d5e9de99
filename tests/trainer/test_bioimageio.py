"""bioimage.io package of an exported model: validates and passes bioimageio.core's test."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from stemwatch.cli import main
from trainer.bioimageio_package import PackageError, write_bioimageio_package
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
