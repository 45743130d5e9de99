"""Checkpoint format, ONNX export (metadata, calibration, CAM, parity) and `stemwatch export`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tifffile
import torch
from torch import nn

from stemwatch.cli import main
from stemwatch.core.errors import StemwatchError
from stemwatch.core.imaging import NormalisationRecipe, TilingSpec, prepare, read_image
from stemwatch.core.modelfile import file_sha256
from stemwatch.core.modelmeta import METADATA_KEY, ModelMetadata
from trainer.architectures import create
from trainer.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, update_checkpoint
from trainer.export import (
    ExportError,
    ExportModule,
    check_parity,
    export_module,
    export_onnx,
    parity_tiles,
)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: on the shared 2-core machine spinning OpenMP threads cost more."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_textured_tiffs(folder: Path, n: int = 2, size: int = 256) -> list[Path]:
    """Real uint16 TIFFs with colony-like blobs on a noisy background."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:size, 0:size]
    paths = []
    for i in range(n):
        img = rng.normal(1000, 40, (size, size))
        for _ in range(6):
            cy, cx = rng.uniform(0, size, 2)
            r = rng.uniform(15, 40)
            img += 800 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        path = folder / f"field_{i}.tif"
        tifffile.imwrite(path, np.clip(img, 0, 65535).astype(np.uint16))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def exported(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("export")
    images = write_textured_tiffs(out / "images")
    report = export_onnx(tiny_checkpoint, out / "fastnet-test.onnx", parity_images=[out / "images"])
    return report, images


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


# --- checkpoint -----------------------------------------------------------------------------


def test_checkpoint_round_trip(tiny_checkpoint: Path, tmp_path: Path):
    ckpt = load_checkpoint(tiny_checkpoint, expected_architecture="fastnet")
    assert ckpt.class_names == ["undifferentiated", "differentiated"] and ckpt.positive_index == 1
    assert ckpt.tiling.tile_size == 64 and ckpt.temperature == 1.5
    assert ckpt.arch_kwargs == {"num_classes": 2, "in_channels": 1}
    model = ckpt.build_model()
    assert not model.training
    again = update_checkpoint(
        tiny_checkpoint, tmp_path / "calibrated.pt", temperature=2.0, metrics={"ece": 0.01}
    )
    new = load_checkpoint(again)
    assert new.temperature == 2.0 and new.metrics == {"val_auc": 0.5, "ece": 0.01}
    for key, value in ckpt.model_state.items():
        torch.testing.assert_close(new.model_state[key], value)


def test_checkpoint_keeps_optimizer_and_scheduler_state(tmp_path: Path):
    model = create("fastnet")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=10)
    model(torch.rand(2, 1, 32, 32)).sum().backward()
    opt.step()
    sched.step()
    path = save_checkpoint(
        tmp_path / "last.pt",
        model=model,
        architecture="fastnet",
        arch_kwargs=None,
        class_names=["a", "b"],
        positive_class="b",
        tiling=TilingSpec(),
        normalisation=NormalisationRecipe(),
        training={"run_dir": tmp_path},
        epoch=4,
        optimizer_state=opt.state_dict(),
        scheduler_state=sched.state_dict(),
    )
    ckpt = load_checkpoint(path)
    assert ckpt.epoch == 4 and ckpt.training == {"run_dir": str(tmp_path)}
    opt2 = torch.optim.AdamW(create("fastnet").parameters(), lr=1e-3)
    opt2.load_state_dict(ckpt.optimizer_state)  # type: ignore[arg-type]
    assert ckpt.scheduler_state is not None and ckpt.scheduler_state["last_epoch"] == 1


def test_checkpoint_refuses_model_of_another_architecture(tmp_path: Path):
    with pytest.raises(ValueError, match="does not match architecture 'resnet18'"):
        save_checkpoint(
            tmp_path / "x.pt",
            model=create("fastnet"),
            architecture="resnet18",
            arch_kwargs={},
            class_names=["a", "b"],
            positive_class="b",
            tiling=TilingSpec(),
            normalisation=NormalisationRecipe(),
        )


def test_checkpoint_of_another_architecture(tiny_checkpoint: Path):
    with pytest.raises(CheckpointError, match="architecture 'fastnet', expected 'resnet18'"):
        load_checkpoint(tiny_checkpoint, expected_architecture="resnet18")


def test_non_checkpoint_inputs_are_named(tmp_path: Path):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    bare = tmp_path / "bare.pt"
    torch.save(create("fastnet").state_dict(), bare)
    for path, hint in [(text, "torch.load"), (bare, "bare state dict"), (tmp_path / "no.pt", "")]:
        with pytest.raises(CheckpointError) as exc:
            export_onnx(path, tmp_path / "out.onnx")
        assert str(path) in str(exc.value) and hint in str(exc.value)
        assert isinstance(exc.value, StemwatchError)
    assert not (tmp_path / "out.onnx").exists()


def test_bad_parity_image_fails_before_export_and_keeps_old_model(
    tiny_checkpoint: Path, tmp_path: Path
):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous model")
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00 truncated")
    with pytest.raises(StemwatchError, match=r"broken\.tif"):
        export_onnx(tiny_checkpoint, out, parity_images=[broken])
    assert out.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.tif", "model.onnx"]


# --- export -----------------------------------------------------------------------------------


def test_export_metadata_round_trip_through_onnxruntime(exported, tiny_checkpoint: Path):
    report, _ = exported
    sess = session(report.onnx_path)
    props = sess.get_modelmeta().custom_metadata_map
    meta = ModelMetadata.from_props(props, report.onnx_path)
    ckpt = load_checkpoint(tiny_checkpoint)
    assert meta == report.metadata
    assert meta.architecture == "fastnet" and meta.name == "fastnet-test"
    assert meta.class_names == ckpt.class_names and meta.positive_class == "differentiated"
    assert meta.tiling == ckpt.tiling and meta.normalisation == ckpt.normalisation
    assert meta.temperature == 1.5 and meta.cam_output_name == "cam"
    assert meta.training["data_hash"] == "sha256:untrained" and meta.training["epoch"] == 0
    assert meta.metrics == {"val_auc": 0.5}
    assert meta.stemwatch_version and meta.created
    assert json.loads(props[METADATA_KEY])["schema_version"] == 1
    # fixed side, dynamic batch, names from the metadata
    (inp,) = sess.get_inputs()
    assert inp.name == meta.input_name and inp.shape[1:] == [1, 64, 64]
    assert isinstance(inp.shape[0], str)
    assert [o.name for o in sess.get_outputs()] == ["probabilities", "logits", "cam"]
    assert meta.domain is None  # the untrained checkpoint names no training data
    assert report.model_hash == file_sha256(report.onnx_path) and len(report.model_hash) == 64


def test_export_is_one_file_with_pinned_opset(exported):
    report, _ = exported
    assert sorted(p.name for p in report.onnx_path.parent.iterdir()) == [
        "fastnet-test.onnx",
        "images",
    ]
    proto = onnx.load(report.onnx_path, load_external_data=False)
    assert not any(onnx.external_data_helper.uses_external_data(t) for t in proto.graph.initializer)
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert proto.ir_version <= 9  # onnxruntime 1.18 reads IR <= 9/10


def test_export_parity_report_on_real_tiles(exported):
    report, _ = exported
    assert "tiles of 1 image path" in report.parity_source
    sizes = [p.batch_size for p in report.parity]
    assert sizes[0] == 1 and sizes[-1] > 1
    for p in report.parity:
        assert set(p.max_abs_diff) == {"probabilities", "logits", "cam"}
        assert max(p.max_abs_diff.values()) <= 1e-4


def test_onnx_outputs_are_calibrated_model_outputs(exported, tiny_checkpoint: Path):
    """Independently of the export wrapper: probabilities == softmax(model(x) / T) at batch N."""
    report, images = exported
    ckpt = load_checkpoint(tiny_checkpoint)
    tiles = np.concatenate(
        [prepare(read_image(p).pixels, ckpt.normalisation, ckpt.tiling).data for p in images]
    )
    assert len(tiles) >= 5 and tiles.shape[1:] == (1, 64, 64)
    probs, logits, cam = session(report.onnx_path).run(None, {"image": tiles})
    with torch.no_grad():
        ref = ckpt.build_model()(torch.from_numpy(tiles))
    np.testing.assert_allclose(logits, ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(probs, torch.softmax(ref / 1.5, 1).numpy(), atol=1e-6)
    assert cam.shape == (len(tiles), 4, 4)  # fastnet: side / 16

    # for two classes the mean of the CAM is the calibrated log-odds of the positive class
    log_odds = np.log(probs[:, 1]) - np.log(probs[:, 0])
    np.testing.assert_allclose(cam.mean(axis=(1, 2)), log_odds, atol=1e-5)


@pytest.mark.shared
def test_export_parity_on_real_microscope_images(
    tiny_checkpoint: Path, shared_real: Path, tmp_path: Path
):
    images = [
        *sorted((shared_real / "hipsc-colonies").glob("*.tif*"))[:1],
        *sorted((shared_real / "psc-timelapse").glob("*.tif*"))[:1],
    ]
    report = export_onnx(tiny_checkpoint, tmp_path / "real.onnx", parity_images=images)
    assert report.parity[-1].batch_size == 8  # max_tiles of the parity check
    assert max(max(p.max_abs_diff.values()) for p in report.parity) <= 1e-4


def test_onnx_refuses_another_tile_size(exported):
    report, _ = exported
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):
        session(report.onnx_path).run(None, {"image": np.zeros((1, 1, 32, 32), np.float32)})


def test_parity_check_catches_a_different_model(exported, tiny_checkpoint: Path):
    report, images = exported
    ckpt = load_checkpoint(tiny_checkpoint)
    tiles = parity_tiles(images, ckpt.tiling, ckpt.normalisation)
    same = ExportModule(ckpt.build_model(), temperature=1.5, positive_index=1)
    assert check_parity(same, report.onnx_path, tiles, tolerance=1e-4)
    torch.manual_seed(123)
    other = ExportModule(create("fastnet").eval(), temperature=1.5, positive_index=1)
    with pytest.raises(ExportError, match=r"disagrees with torch at batch 1: .*max abs diff"):
        check_parity(other, report.onnx_path, tiles, tolerance=1e-4)
    miscalibrated = ExportModule(ckpt.build_model(), temperature=1.0, positive_index=1)
    with pytest.raises(ExportError, match=r"probabilities max abs diff"):
        check_parity(miscalibrated, report.onnx_path, tiles, tolerance=1e-4)


class BrightnessNet(nn.Module):
    """Hand-set GAP model: feature = 4x4-pooled brightness; 'differentiated' = bright."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(4)
        self.fc = nn.Linear(1, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[-2.0], [2.0]]))
            self.fc.bias.copy_(torch.tensor([0.5, -0.5]))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.pool(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features.mean(dim=(2, 3)))

    def classifier_layer(self) -> nn.Linear:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def test_cam_highlights_a_bright_patch(tmp_path: Path):
    module = ExportModule(BrightnessNet(), temperature=2.0, positive_index=1)
    path = export_module(module, tmp_path / "bright.onnx", input_size=64)
    image = np.full((2, 1, 64, 64), 0.1, np.float32)
    image[0, 0, 40:56, 8:24] = 1.0  # bright patch -> cells (10..13, 2..5) of the 16x16 CAM
    image[1, 0, 0:16, 48:64] = 1.0
    probs, _, cam = session(path).run(None, {"image": image})
    assert cam.shape == (2, 16, 16)
    for i, (rows, cols) in enumerate([((10, 14), (2, 6)), ((0, 4), (12, 16))]):
        inside = cam[i, rows[0] : rows[1], cols[0] : cols[1]]
        outside = np.delete(
            cam[i].ravel(),
            np.ravel_multi_index(
                np.mgrid[rows[0] : rows[1], cols[0] : cols[1]].reshape(2, -1), (16, 16)
            ),
        )
        assert inside.min() > outside.max()
        np.testing.assert_allclose(inside, (4.0 * 1.0 - 1.0) / 2.0, atol=1e-6)  # (w·f + b) / T
    np.testing.assert_allclose(cam.mean(axis=(1, 2)), np.log(probs[:, 1] / probs[:, 0]), atol=1e-5)


def test_model_without_gap_exports_without_cam(tmp_path: Path):
    model = create("lenet5").eval()
    module = ExportModule(model, temperature=1.0, positive_index=1)
    assert module.output_names == ["probabilities", "logits"]
    path = export_module(module, tmp_path / "lenet.onnx", input_size=32)
    assert [o.name for o in session(path).get_outputs()] == ["probabilities", "logits"]
    # its penultimate features: what the last of its three linear layers reads
    module = ExportModule(model, temperature=1.0, positive_index=1, features_layer="classifier.4")
    path = export_module(module, tmp_path / "lenet-f.onnx", input_size=32)
    x = np.random.default_rng(0).random((3, 1, 32, 32), dtype=np.float32)
    _, _, features = session(path).run(None, {"image": x})
    assert features.shape == (3, 84)
    np.testing.assert_allclose(features, module.features(x), atol=1e-5)
    with pytest.raises(ExportError, match="no layer 'head'"):
        ExportModule(model, temperature=1.0, positive_index=1, features_layer="head")


# --- command line -----------------------------------------------------------------------------


def test_cli_export(tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    images = write_textured_tiffs(tmp_path / "imgs", n=1)
    out = tmp_path / "model.onnx"
    rc = main(
        [
            "export",
            str(tiny_checkpoint),
            "-o",
            str(out),
            "--parity-images",
            str(images[0]),
            "--name",
            "cli-model",
        ]
    )
    assert rc == 0 and out.is_file()
    printed = capsys.readouterr().out
    assert "max abs diff" in printed and "fastnet" in printed
    meta = ModelMetadata.from_props(session(out).get_modelmeta().custom_metadata_map, out)
    assert meta.name == "cli-model"


def test_cli_export_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00" * 10)
    rc = main(["export", str(bad), "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and str(bad) in err and "not a stemwatch checkpoint" in err
