"""int8 models: static QDQ quantisation calibrated on training tiles (trainer/quantize.py).

Real ONNX files (the tiny classifiers of tests/onnx_models.py and an exported fastnet), real
TIFFs prepared as the monitor prepares them, real onnxruntime sessions opened by the monitor's
loader. The held-out comparison runs on a checkpoint whose split lists real image files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import tifffile
import torch
from onnx import TensorProto, helper
from onnx_models import build_classifier, classifier_graph, tiny_metadata

from monitor.inference import load_model
from stemwatch.cli import main
from stemwatch.core.imaging import hash_bytes, prepare, read_bytes, read_image
from stemwatch.core.modelmeta import METADATA_KEY
from trainer.architectures import create
from trainer.checkpoint import save_checkpoint
from trainer.quantize import (
    CalibrationSet,
    QuantizeError,
    calibration_for,
    calibration_tiles,
    head_nodes,
    name_nodes,
    quantize_model,
)

CLASS_NAMES = ["undifferentiated", "differentiated"]
TOLERANCE = 0.02
"""|int8 - fp32| of a tile's probability allowed on held-back test tiles (the tiny classifier
gives about 0.002; its logits are small, so probabilities move little)."""


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_tiffs(folder: Path, n: int, *, seed: int, size: int = 128) -> list[Path]:
    """Real uint16 TIFFs: colony-like blobs of varying brightness on a noisy background."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    paths = []
    for i in range(n):
        img = rng.normal(rng.uniform(800, 1600), 60, (size, size))
        for _ in range(5):
            cy, cx = rng.uniform(0, size, 2)
            r = rng.uniform(8, 24)
            img += rng.uniform(300, 1500) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        path = folder / f"img_{seed}_{i}.tif"
        tifffile.imwrite(path, np.clip(img, 0, 65535).astype(np.uint16))
        paths.append(path)
    return paths


def tiles_of(files: list[Path], model: Path) -> np.ndarray:
    meta = load_model(model).metadata
    return np.concatenate(
        [prepare(read_image(f).pixels, meta.normalisation, meta.tiling).data for f in files]
    )


def qdq_ops(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("images")
    return {
        "train": write_tiffs(root / "train", 6, seed=1),
        "test": write_tiffs(root / "test", 4, seed=2),
    }


@pytest.fixture(scope="module")
def quantised(
    tmp_path_factory: pytest.TempPathFactory, images: dict[str, list[Path]]
) -> tuple[Path, Path, Any]:
    """The tiny CAM classifier and its int8 model, calibrated on the training images."""
    out = tmp_path_factory.mktemp("q")
    fp32 = build_classifier(
        out / "tiny.onnx", tile_size=32, downsample=2, cam=True, brightness_gain=4.0
    )
    meta = load_model(fp32).metadata
    cal = calibration_tiles(images["train"], meta.tiling, meta.normalisation, source="train")
    int8 = out / "tiny.int8.onnx"
    int8_meta, close = quantize_model(fp32, int8, cal)
    return fp32, int8, (int8_meta, close, cal)


def test_int8_model_is_qdq_with_the_same_outputs(quantised: tuple[Path, Path, Any]) -> None:
    fp32, int8, _ = quantised
    assert {"QuantizeLinear", "DequantizeLinear"} <= qdq_ops(int8)
    assert not {"QuantizeLinear", "DequantizeLinear"} & qdq_ops(fp32)
    want = [o.name for o in onnx.load(str(fp32)).graph.output]
    assert [o.name for o in onnx.load(str(int8)).graph.output] == want
    assert want == ["probabilities", "logits", "cam"]


def test_int8_model_loads_in_the_monitor_and_says_what_it_is(
    quantised: tuple[Path, Path, Any],
) -> None:
    fp32, int8, (int8_meta, _, cal) = quantised
    a, b = load_model(fp32), load_model(int8)
    assert b.has_cam and b.provider == "CPUExecutionProvider"
    assert b.model_hash != a.model_hash
    q = b.metadata.quantization
    assert q is not None and a.metadata.quantization is None
    assert q == int8_meta.quantization
    assert q.format == "QDQ" and q.weights.startswith("int8, per output channel")
    assert q.calibration["n_tiles"] == len(cal.tiles) and q.calibration["source"] == "train"
    assert q.calibration["n_images"] == 6 and "min/max" in q.calibration["method"]
    assert q.fp32_sha256 == a.model_hash
    # everything else is the fp32 model's metadata, unchanged
    assert b.metadata.model_dump(exclude={"quantization"}) == a.metadata.model_dump(
        exclude={"quantization"}
    )


def test_int8_agrees_with_fp32_on_test_tiles(
    quantised: tuple[Path, Path, Any], images: dict[str, list[Path]]
) -> None:
    fp32, int8, _ = quantised
    tiles = tiles_of(images["test"], fp32)
    a, b = load_model(fp32), load_model(int8)
    pa, ca = a.predict_with_cam(tiles)
    pb, cb = b.predict_with_cam(tiles)
    assert len(tiles) >= 8 and np.ptp(pa) > 0.05  # the tiles do move the prediction
    assert np.abs(pa - pb).max() <= TOLERANCE
    assert ca is not None and cb is not None and ca.shape == cb.shape


def test_head_layers_stay_float(quantised: tuple[Path, Path, Any]) -> None:
    """The layers writing the outputs (the two linear heads, the CAM projection) are not
    quantised; the feature convolution is."""
    fp32, int8, (meta, _, _) = quantised
    graph = onnx.load(str(fp32))
    assert name_nodes(graph)  # the test graph's nodes are unnamed
    heads = head_nodes(graph)
    by_name = {n.name: n for n in graph.graph.node}
    assert sorted(by_name[h].op_type for h in heads) == ["Conv", "Gemm", "Gemm"]
    assert meta.quantization is not None
    kept = {n.name: n.op_type for n in onnx.load(str(int8)).graph.node}
    assert sorted(kept[h] for h in meta.quantization.kept_float) == ["Conv", "Gemm", "Gemm"]
    q = onnx.load(str(int8))
    quantised_inputs = {i for n in q.graph.node if n.op_type == "Conv" for i in n.input}
    dq_outputs = {o for n in q.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    assert quantised_inputs & dq_outputs  # the feature convolution reads dequantised int8


def with_features_output(path: Path) -> Path:
    """The tiny classifier with an extra ``features`` output (as the domain check adds)."""
    model = classifier_graph(tile_size=32, brightness_gain=4.0)
    model.graph.node.append(helper.make_node("Identity", ["fm"], ["features"]))
    model.graph.output.append(helper.make_tensor_value_info("features", TensorProto.FLOAT, None))
    meta = tiny_metadata(tile_size=32, downsample=2)
    helper.set_model_props(model, {METADATA_KEY: meta.to_json()})
    onnx.save(model, str(path))
    return path


def test_extra_outputs_are_kept(tmp_path: Path, images: dict[str, list[Path]]) -> None:
    fp32 = with_features_output(tmp_path / "feat.onnx")
    meta = load_model(fp32).metadata
    cal = calibration_tiles(images["train"], meta.tiling, meta.normalisation)
    _, close = quantize_model(fp32, tmp_path / "feat.int8.onnx", cal)
    outputs = [o.name for o in onnx.load(str(tmp_path / "feat.int8.onnx")).graph.output]
    assert outputs == ["probabilities", "logits", "features"]
    # the mean of the input tile, read through the quantised input (steps of 1/255)
    assert close["features"]["max_abs_diff"] < 1e-3


def test_a_failed_quantisation_keeps_the_previous_file(
    quantised: tuple[Path, Path, Any], tmp_path: Path
) -> None:
    fp32, _, (_, _, cal) = quantised
    target = tmp_path / "keep.int8.onnx"
    target.write_bytes(b"previous")
    with pytest.raises(QuantizeError, match="tolerance"):
        quantize_model(fp32, target, cal, tolerance=0.0)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.int8.onnx"]
    wrong = CalibrationSet(np.zeros((2, 1, 16, 16), np.float32), (), "wrong size")
    with pytest.raises(QuantizeError, match=r"\(N, 1, 32, 32\)"):
        quantize_model(fp32, target, wrong)


# --- calibration input ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "empty_dir", "not_an_image", "corrupt"])
def test_bad_calibration_input_names_the_file_and_the_fix(tmp_path: Path, kind: str) -> None:
    meta = tiny_metadata(tile_size=32, downsample=2)
    bad = tmp_path / "cal"
    if kind == "empty_dir":
        bad.mkdir()
    elif kind == "not_an_image":
        bad = tmp_path / "notes.txt"
        bad.write_text("not an image")
    elif kind == "corrupt":
        bad = tmp_path / "broken.tif"
        bad.write_bytes(b"II*\x00" + b"\x00" * 40)
    from trainer.quantize import expand_images

    with pytest.raises(QuantizeError) as err:
        calibration_tiles(expand_images([bad]), meta.tiling, meta.normalisation)
    text = str(err.value)
    assert str(bad) in text and "--calibration-images" in text


# --- from a checkpoint: `stemwatch export --int8` ------------------------------------------


def split_record(files: dict[str, list[Path]]) -> dict[str, Any]:
    """A checkpoint's image-level split: each file its own well, labels alternating."""
    images = []
    for part, paths in files.items():
        for i, p in enumerate(paths):
            images.append(
                {
                    "path": str(p.resolve()),
                    "part": part,
                    "group": f"P1/{part}{i}",
                    "label": CLASS_NAMES[i % 2],
                    "plate": "P1",
                    "well": f"{part}{i}",
                    "field": "0",
                    "experiment": "",
                    "hours_since_induction": 24.0 * (i % 2),
                    "source": "",
                    "content_hash": hash_bytes(read_bytes(p)),
                }
            )
    return {"name": "holdout", "group_by": "well", "data_hash": "sha256:test", "images": images}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, images: dict[str, list[Path]]) -> Path:
    """An untrained fastnet (32-px tiles) whose split names real train and test images."""
    torch.manual_seed(0)
    from stemwatch.core.imaging import NormalisationRecipe, TilingSpec

    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "best.pt",
        model=create("fastnet").eval(),
        architecture="fastnet",
        arch_kwargs={},
        class_names=CLASS_NAMES,
        positive_class="differentiated",
        tiling=TilingSpec(downsample=2, tile_size=32, max_tiles=8),
        normalisation=NormalisationRecipe(),
        temperature=1.0,
        training={"data_hash": "sha256:test"},
        split=split_record({"train": images["train"], "val": [], "test": images["test"]}),
    )


def test_cli_export_int8_reports_heldout_accuracy_and_speed(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.onnx"
    rc = main(["export", str(checkpoint), "-o", str(out), "--int8", "--speed-repeats", "1"])
    assert rc == 0
    printed = capsys.readouterr().out
    int8 = tmp_path / "m.int8.onnx"
    assert {"QuantizeLinear", "DequantizeLinear"} <= qdq_ops(int8)
    model = load_model(int8)
    assert model.has_cam and model.metadata.quantization is not None
    cal = model.metadata.quantization.calibration
    assert cal["n_images"] == 6 and cal["data_hash"] == "sha256:test"
    assert "training images of the run's split holdout" in cal["source"]
    report = json.loads((tmp_path / "m.int8.report.json").read_text())
    held = report["heldout"]
    assert held["n_images"] == 4 and held["n_groups"] == 4 and held["group_by"] == "well"
    ba = held["figures"]["balanced_accuracy"]
    assert set(ba) == {"fp32", "int8", "diff"}
    assert ba["diff"]["value"] == pytest.approx(ba["int8"]["value"] - ba["fp32"]["value"])
    assert ba["diff"]["low"] is not None and ba["diff"]["low"] <= ba["diff"]["value"]
    rows = report["speed"]["rows"]
    assert {(r["batch"], r["threads"]) for r in rows} == {(1, 1), (32, 1), (1, 2), (32, 2)}
    assert all(r["fp32_ms_per_tile"]["median"] > 0 for r in rows)
    assert "load_before" in report["speed"]["machine"]
    assert "int8 - fp32 (paired)" in printed and "speed-up" in printed
    assert "balanced accuracy" in printed


def test_calibration_defaults_to_the_training_split(
    checkpoint: Path, images: dict[str, list[Path]]
) -> None:
    cal = calibration_for(checkpoint, max_images=3)
    assert len(cal.files) == 3 and set(cal.files) <= {p.resolve() for p in images["train"]}
    assert cal.tiles.shape[1:] == (1, 32, 32) and cal.tiles.dtype == np.float32


def test_calibration_refuses_heldout_images(
    checkpoint: Path, images: dict[str, list[Path]], tmp_path: Path
) -> None:
    with pytest.raises(QuantizeError, match="held-out test images") as err:
        calibration_for(checkpoint, [images["test"][1].parent])
    assert str(images["test"][0]) in str(err.value)
    copy = tmp_path / "renamed.tif"  # the same bytes under another name: still held out
    copy.write_bytes(images["test"][2].read_bytes())
    with pytest.raises(QuantizeError, match="held-out"):
        calibration_for(checkpoint, [copy])


def test_cli_bad_calibration_fails_before_the_export(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.onnx"
    missing = tmp_path / "nowhere"
    args = ["export", str(checkpoint), "-o", str(out), "--int8"]
    rc = main([*args, "--calibration-images", str(missing)])
    assert rc == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "--calibration-images" in err
    assert not out.exists() and not (tmp_path / "m.int8.onnx").exists()


def test_the_daemon_scores_images_with_the_int8_model(
    quantised: tuple[Path, Path, Any], images: dict[str, list[Path]], tmp_path: Path
) -> None:
    """`stemwatch watch --once` runs the int8 model like any other: every image scored, the
    log saying it is int8."""
    import os
    import subprocess
    import sys
    import time

    _, int8, _ = quantised
    plate = tmp_path / "plate"
    plate.mkdir()
    for well, src in zip(["A01", "A02", "B01"], images["test"], strict=False):
        (plate / f"P1_{well}_1_2026y01m05d_09h00m.tif").write_bytes(src.read_bytes())
    old = time.time() - 60  # written a minute ago: past any quiet period
    for f in plate.iterdir():
        os.utime(f, (old, old))
    cmd = [sys.executable, "-m", "stemwatch", "watch", str(plate), "--once"]
    r = subprocess.run(
        [*cmd, "--db", str(tmp_path / "s.db"), "--model", str(int8)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "3 processed" in r.stdout
    assert f"{int8} (test-tiny-cnn, int8, sha256" in r.stderr


def test_cli_export_int8_without_a_split_says_why_it_did_not_compare(
    tiny_checkpoint: Path,
    images: dict[str, list[Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A checkpoint without an image-level split: calibration on the given images, no held-out
    comparison (said so), and an int8 path equal to -o is refused before anything is written."""
    out = tmp_path / "m.onnx"
    base = ["export", str(tiny_checkpoint), "-o", str(out)]
    assert main([*base, "--int8", str(out)]) == 2
    assert "needs its own file" in capsys.readouterr().err and not out.exists()
    cal = ["--calibration-images", str(images["train"][0].parent)]
    assert main([*base, "--int8", *cal, "--speed-repeats", "0"]) == 0
    printed = capsys.readouterr().out
    assert "held-out accuracy not compared" in printed and "no image-level split" in printed
    report = json.loads((tmp_path / "m.int8.report.json").read_text())
    assert report["heldout"] is None and "speed" not in report
    assert load_model(tmp_path / "m.int8.onnx").metadata.quantization is not None


def test_int8_keeps_the_domain_checks_features_and_description(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model exported with a domain description (a ``features`` output): the int8 model
    keeps the output and the description, and the monitor loads it with the domain check."""
    imgs = {
        "train": write_tiffs(tmp_path / "train", 32, seed=5),
        "val": [],
        "test": write_tiffs(tmp_path / "test", 8, seed=6),
    }
    domain_data = tmp_path / "domain"
    for i, f in enumerate(imgs["train"]):
        (domain_data / CLASS_NAMES[i % 2]).mkdir(parents=True, exist_ok=True)
        (domain_data / CLASS_NAMES[i % 2] / f.name).write_bytes(f.read_bytes())
    from stemwatch.core.imaging import NormalisationRecipe, TilingSpec

    torch.manual_seed(0)
    ckpt = save_checkpoint(
        tmp_path / "best.pt",
        model=create("fastnet").eval(),
        architecture="fastnet",
        arch_kwargs={},
        class_names=CLASS_NAMES,
        positive_class="differentiated",
        tiling=TilingSpec(downsample=2, tile_size=32, max_tiles=8),
        normalisation=NormalisationRecipe(),
        split=split_record(imgs),
    )
    out = tmp_path / "m.onnx"
    args = ["export", str(ckpt), "-o", str(out), "--int8", "--speed-repeats", "0"]
    assert main([*args, "--domain-data", str(domain_data)]) == 0
    capsys.readouterr()
    outputs = [o.name for o in onnx.load(str(tmp_path / "m.int8.onnx")).graph.output]
    assert outputs == [o.name for o in onnx.load(str(out)).graph.output]
    assert "features" in outputs
    fp32, int8 = load_model(out), load_model(tmp_path / "m.int8.onnx")
    assert int8.metadata.domain is not None and int8.metadata.domain == fp32.metadata.domain
    assert int8.metadata.quantization is not None
    assert {"QuantizeLinear", "DequantizeLinear"} <= qdq_ops(tmp_path / "m.int8.onnx")


def test_unknown_fields_of_a_newer_quantization_record_are_ignored() -> None:
    """The version policy holds inside ``quantization`` too: a newer exporter's extra field
    does not make an older monitor refuse the model."""
    from stemwatch.core.modelmeta import ModelMetadata, Quantization

    meta = tiny_metadata(quantization=Quantization(weights="int8", activations="uint8"))
    data = json.loads(meta.to_json())
    data["quantization"]["added_later"] = {"anything": 1}
    read = ModelMetadata.from_dict(data, "newer.onnx")
    assert read.quantization is not None and read.quantization.weights == "int8"
