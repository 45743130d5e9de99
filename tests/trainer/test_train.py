"""End-to-end training on a tiny real-TIFF set: run dir, resume, CV, evaluation, bad input."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from stemwatch.cli import main
from stemwatch.core.config import load_config, validate_mapping
from stemwatch.core.errors import ConfigError, StemwatchError
from tests.trainer.fixtures_training import make_dataset, tiny_config
from trainer.checkpoint import load_checkpoint
from trainer.config import TrainerConfig
from trainer.train import (
    Trainer,
    amp_enabled,
    build_model,
    prepare_data,
    resolve_device,
    run_cross_validation,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), wells_per_class=4, fields=2)


@pytest.fixture(scope="module")
def trained_run(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`stemwatch train --config tiny.yaml MANIFEST -o RUN` (the short form overrides)."""
    tmp = tmp_path_factory.mktemp("run")
    cfg = tiny_config(Path("ignored.csv"), Path("ignored"))
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    run_dir = tmp / "run"
    rc = main(["train", "--config", str(tmp / "tiny.yaml"), str(dataset), "-o", str(run_dir)])
    assert rc == 0
    return run_dir


def test_run_dir_has_everything(trained_run: Path) -> None:
    for name in ("best.pt", "last.pt", "metrics.csv", "config.yaml", "split.json", "report.md"):
        assert (trained_run / name).is_file(), name
    rows = list(csv.DictReader((trained_run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"train_loss", "val_loss", "val_balanced_accuracy", "lr"} <= set(rows[0])
    used = load_config(TrainerConfig, trained_run / "config.yaml")
    assert used.runtime.out_dir == trained_run
    split = json.loads((trained_run / "split.json").read_text())
    parts = [set(split[p]["groups"]) for p in ("train", "val", "test")]
    assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_trained_model_separates_the_classes(trained_run: Path) -> None:
    summary = json.loads((trained_run / "summary.json").read_text())
    image = summary["test"]["image"]
    assert image["balanced_accuracy"] >= 0.75
    assert set(image["per_class"]) == {"undifferentiated", "differentiated"}
    best = load_checkpoint(trained_run / "best.pt", expected_architecture="fastnet")
    assert best.temperature == pytest.approx(summary["temperature"])
    assert best.tiling.tile_size == 32 and best.training["split"]["group_by"] == "well"
    assert "val_ece_after" in best.metrics


def test_evaluate_checkpoint_and_onnx_agree(trained_run: Path, dataset: Path, tmp_path) -> None:
    from trainer.export import export_onnx

    assert (
        main(["evaluate", str(trained_run / "best.pt"), str(dataset), "-o", str(tmp_path / "pt")])
        == 0
    )
    onnx_path = tmp_path / "model.onnx"
    export_onnx(trained_run / "best.pt", onnx_path)
    assert main(["evaluate", str(onnx_path), str(dataset), "-o", str(tmp_path / "onnx")]) == 0
    pt = json.loads((tmp_path / "pt" / "metrics.json").read_text())
    ox = json.loads((tmp_path / "onnx" / "metrics.json").read_text())
    for key in ("accuracy", "balanced_accuracy", "roc_auc"):
        assert ox["image"][key] == pytest.approx(pt["image"][key], abs=1e-6)
    p_pt = [p["probability"] for p in pt["predictions"]]
    p_ox = [p["probability"] for p in ox["predictions"]]
    assert np.allclose(p_pt, p_ox, atol=1e-4)
    assert set(pt["image"]["accuracy_by_hours"]) == {"0", "24"}
    report = (tmp_path / "pt" / "report.md").read_text()
    assert "balanced_accuracy" in report and (tmp_path / "pt" / "confusion.png").stat().st_size > 0
    assert (tmp_path / "pt" / "accuracy_by_hours.png").is_file()


def _trainer(dataset: Path, out: Path, **over: object) -> Trainer:
    over = {"optim__epochs": 3, "optim__patience": 10, **over}
    cfg = validate_mapping(TrainerConfig, tiny_config(dataset, out, **over), "t")
    data = prepare_data(cfg)
    # fixed parts (no split search needed here): wells A01,B01 val; the rest train
    val = [i for i, s in enumerate(data.samples) if s.well in ("A01", "B01")]
    train = [i for i in range(len(data.samples)) if i not in val]
    return Trainer(
        cfg,
        data.cache.tileset([data.samples[i] for i in train]),
        data.cache.tileset([data.samples[i] for i in val]),
        out,
    )


def test_resume_gives_the_uninterrupted_result(dataset: Path, tmp_path: Path) -> None:
    full = _trainer(dataset, tmp_path / "full").fit()
    interrupted = _trainer(dataset, tmp_path / "resumed")
    part = interrupted.fit(stop_after_epochs=1)
    assert part.epochs_run == 1 and not (tmp_path / "resumed" / "metrics.csv").read_text().count(
        "\n3,"
    )
    resumed = _trainer(dataset, tmp_path / "resumed").fit(resume=True)
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in full.history]
    a = load_checkpoint(tmp_path / "full" / "last.pt").model_state
    b = load_checkpoint(tmp_path / "resumed" / "last.pt").model_state
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.temperature == pytest.approx(full.temperature)


def test_balanced_sampler_trains(dataset: Path, tmp_path: Path) -> None:
    result = _trainer(dataset, tmp_path, optim__balance="sampler", optim__epochs=1).fit()
    assert result.epochs_run == 1 and (tmp_path / "best.pt").is_file()


def test_cross_validation_reports_mean_and_sd(dataset: Path, tmp_path: Path) -> None:
    cfg = validate_mapping(
        TrainerConfig, tiny_config(dataset, tmp_path, optim__epochs=1, split__val_fraction=0.5), "t"
    )
    summary = run_cross_validation(cfg, 2)
    assert len(summary["folds"]) == 2
    assert (tmp_path / "fold0" / "best.pt").is_file() and (tmp_path / "fold1" / "best.pt").is_file()
    acc = summary["image"]["accuracy"]
    assert len(acc["values"]) == 2 and acc["sd"] >= 0
    report = (tmp_path / "report.md").read_text()
    assert "Mean ± sd" in report and "fold1" in report
    split = json.loads((tmp_path / "split.json").read_text())
    tested = [g for f in split["folds"] for g in f["test"]["groups"]]
    assert len(tested) == len(set(tested)) == 8  # every well tested exactly once


def test_unknown_architecture_names_field_and_registry(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        validate_mapping(TrainerConfig, {"model": {"architecture": "vgg16"}}, "train.yaml")
    msg = str(err.value)
    assert "train.yaml: model.architecture" in msg and "'vgg16'" in msg
    assert "fastnet" in msg and "resnet18" in msg


def test_cli_reports_bad_config_in_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("optim:\n  epochs: 0\n")
    assert main(["train", "--config", str(bad), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "optim.epochs" in err and str(bad) in err


def test_resume_from_another_architecture_is_refused(
    dataset: Path, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    shutil.copy(tiny_checkpoint, tmp_path / "last.pt")  # a fastnet checkpoint
    trainer = _trainer(dataset, tmp_path, model__architecture="lenet5")
    with pytest.raises(
        StemwatchError, match=r"last\.pt.*architecture 'fastnet', expected 'lenet5'"
    ):
        trainer.fit(resume=True)


def test_init_weights_with_wrong_keys_is_refused(tmp_path: Path) -> None:
    from trainer.architectures import create

    weights = tmp_path / "lenet.pth"
    torch.save(create("lenet5").state_dict(), weights)
    cfg = TrainerConfig.model_validate(
        {"model": {"architecture": "fastnet", "init_weights": weights}}
    )
    with pytest.raises(StemwatchError, match=r"lenet\.pth"):
        build_model(cfg)


def test_cuda_request_without_gpu_falls_back(caplog) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with caplog.at_level(logging.WARNING):
        dev = resolve_device("cuda")
    assert dev.type == "cpu" and "no CUDA device" in caplog.text
    assert not amp_enabled(dev, True)


def test_training_into_an_existing_run_is_refused(
    trained_run: Path, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11 #14: `train -o` into an existing run silently overwrote best.pt."""
    before = (trained_run / "best.pt").stat().st_mtime_ns
    assert main(["train", str(dataset), "-o", str(trained_run)]) == 2
    err = capsys.readouterr().err
    assert "already holds a run (best.pt" in err and "--resume" in err and "--overwrite" in err
    assert (trained_run / "best.pt").stat().st_mtime_ns == before
