"""End-to-end training on a tiny real-TIFF set: run dir, resume, CV, evaluation, bad input."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import yaml

from stemwatch.cli import main
from stemwatch.core.config import load_config, validate_mapping
from stemwatch.core.errors import ConfigError, StemwatchError
from tests.trainer.fixtures_training import make_dataset, texture, tiny_config
from trainer.checkpoint import load_checkpoint
from trainer.config import TrainerConfig
from trainer.evaluate import evaluate_model
from trainer.heldout import LeakError
from trainer.train import (
    Trainer,
    amp_enabled,
    build_model,
    check_run_dir,
    draw_tiles,
    prepare_data,
    resolve_device,
    run_cross_validation,
    run_training,
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


def test_train_prints_each_hour_and_the_balanced_accuracy_from_it_on(trained_run: Path) -> None:
    from stemwatch.commands.train import held_out_figures

    summary = json.loads((trained_run / "summary.json").read_text())
    figures = held_out_figures(summary["test"]["image"])
    by_hours = figures["hours_since_induction"]
    assert list(by_hours) == ["0 h", "24 h"]
    assert "balanced accuracy from 24 h on" in by_hours["24 h"]
    assert by_hours["0 h"].endswith(figures["balanced_accuracy"])  # from 0 h on: every image


def test_evaluate_checkpoint_and_onnx_agree(trained_run: Path, tmp_path) -> None:
    """The checkpoint on its own held-out split and the exported model on the run's
    test_manifest.csv score the same images the same way, with the training's figures."""
    from trainer.export import export_onnx

    assert main(["evaluate", str(trained_run / "best.pt"), "-o", str(tmp_path / "pt")]) == 0
    onnx_path = tmp_path / "model.onnx"
    export_onnx(trained_run / "best.pt", onnx_path)
    test_manifest = trained_run / "test_manifest.csv"
    assert main(["evaluate", str(onnx_path), str(test_manifest), "-o", str(tmp_path / "onnx")]) == 0
    pt = json.loads((tmp_path / "pt" / "metrics.json").read_text())
    ox = json.loads((tmp_path / "onnx" / "metrics.json").read_text())
    summary = json.loads((trained_run / "summary.json").read_text())
    assert pt["held_out"] and ox["held_out"] and "notice" not in pt
    for key in ("accuracy", "balanced_accuracy", "roc_auc"):
        assert ox["image"][key] == pytest.approx(pt["image"][key], abs=1e-6)
        assert pt["image"][key] == pytest.approx(summary["test"]["image"][key], abs=1e-6)
        assert ox["image"]["intervals"][key] == pytest.approx(pt["image"]["intervals"][key])
    p_pt = [p["probability"] for p in pt["predictions"]]
    p_ox = [p["probability"] for p in ox["predictions"]]
    assert np.allclose(p_pt, p_ox, atol=1e-4)
    assert {Path(p["path"]).name for p in pt["predictions"]} == {
        Path(p["path"]).name for p in ox["predictions"]
    }
    by_hours = pt["image"]["accuracy_by_hours"]
    assert set(by_hours) == {"0", "24"}
    # "from 0 h on" is every image: the overall balanced accuracy, with its interval
    assert by_hours["0"]["balanced_accuracy_from"] == pytest.approx(
        pt["image"]["intervals"]["balanced_accuracy"]
    )
    report = (tmp_path / "pt" / "report.md").read_text()
    assert "balanced accuracy from this hour on" in report
    assert report.startswith("# Evaluation of best.pt")
    assert "balanced accuracy" in report and (tmp_path / "pt" / "confusion.png").stat().st_size > 0
    assert "percentile bootstrap over the 2 wells" in report
    assert (tmp_path / "pt" / "accuracy_by_hours.png").is_file()


def test_evaluate_refuses_a_leaky_evaluation(
    trained_run: Path, dataset: Path, tmp_path: Path, capsys
) -> None:
    """The issue's done-when: the training manifest holds training and validation images,
    so evaluating on it is refused; --allow-seen scores it and every output says so first."""
    out = tmp_path / "leak"
    assert main(["evaluate", str(trained_run / "best.pt"), str(dataset), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "24 of 32 images were seen by checkpoint" in err and "--allow-seen" in err
    assert not out.exists()

    argv = ["evaluate", str(trained_run / "best.pt"), str(dataset), "-o", str(out)]
    assert main([*argv, "--allow-seen"]) == 0
    first = "NOT A HELD-OUT EVALUATION: 24 of 32 images were seen"
    assert capsys.readouterr().out.splitlines()[0].startswith(first)
    metrics_text = (out / "metrics.json").read_text()
    assert metrics_text.splitlines()[0].startswith('{"notice": "' + first)
    assert json.loads(metrics_text)["held_out"] is False
    assert (out / "report.md").read_text().splitlines()[0].startswith("**" + first)


def test_an_exported_model_is_checked_by_well(trained_run: Path, dataset: Path, tmp_path: Path):
    """An ONNX model lists no images, but its split's wells: another image of a training
    well (a new file, never seen) is refused too."""
    from trainer.export import export_onnx

    onnx_path = export_onnx(trained_run / "best.pt", tmp_path / "m.onnx").onnx_path
    split = json.loads((trained_run / "split.json").read_text())
    experiment, plate, well = split["train"]["groups"][0].split("/")
    label = "undifferentiated" if well.startswith("A") else "differentiated"
    rng = np.random.default_rng(5)
    tifffile.imwrite(tmp_path / "new.tif", texture(int(label == "differentiated"), 128, rng))
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        f"path,label,plate,well,experiment\nnew.tif,{label},{plate},{well},{experiment}\n"
    )
    with pytest.raises(LeakError, match=r"1 of 1 images were seen by model .*from wells of its"):
        evaluate_model(onnx_path, manifest)
    other = tmp_path / "other.csv"
    other.write_text(f"path,label,plate,well,experiment\nnew.tif,{label},P9,{well},{experiment}\n")
    result = evaluate_model(onnx_path, other)
    assert result["held_out"] and "checked by well" in result["data_description"]


def test_a_changed_held_out_image_is_refused(dataset: Path, tmp_path: Path) -> None:
    shutil.copytree(dataset.parent, tmp_path / "data")
    cfg = validate_mapping(
        TrainerConfig, tiny_config(tmp_path / "data" / "manifest.csv", tmp_path / "run"), "t"
    )
    run_training(cfg)
    test_image = next(
        im
        for im in load_checkpoint(tmp_path / "run" / "best.pt").split["images"]
        if im["part"] == "test"
    )
    Path(test_image["path"]).write_bytes(Path(test_image["path"]).read_bytes()[:-2] + b"xx")
    with pytest.raises(StemwatchError, match="held-out images changed since training"):
        evaluate_model(tmp_path / "run" / "best.pt")


def test_training_into_a_run_folder_with_a_model_is_refused(
    trained_run: Path, dataset: Path, capsys
) -> None:
    before = (trained_run / "best.pt").read_bytes()
    assert main(["train", str(dataset), "-o", str(trained_run)]) == 2
    err = capsys.readouterr().err
    assert "already holds a trained model" in err and "--resume" in err and "--overwrite" in err
    assert (trained_run / "best.pt").read_bytes() == before
    check_run_dir(trained_run, resume=True)
    check_run_dir(trained_run, overwrite=True)


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


def test_draw_tiles_takes_at_most_k_of_each_image_afresh_each_epoch() -> None:
    image = np.repeat(np.arange(5), [1, 3, 16, 16, 2])
    assert np.array_equal(draw_tiles(image, None, torch.Generator()), np.arange(len(image)))
    gen = torch.Generator().manual_seed(0)
    draws = [draw_tiles(image, 4, gen) for _ in range(2)]
    for d in draws:
        assert np.bincount(image[d]).tolist() == [1, 3, 4, 4, 2]
        assert len(set(d.tolist())) == len(d) and np.all(np.diff(d) > 0)
    assert not np.array_equal(*draws)  # another draw next epoch


def test_training_on_a_few_tiles_per_image(dataset: Path, tmp_path: Path) -> None:
    trainer = _trainer(dataset, tmp_path, optim__tiles_per_image=1, optim__epochs=1)
    assert len(set(trainer.train_set.image.tolist())) < len(trainer.train_set)  # several each
    result = trainer.fit()
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
    assert summary["scheme"] == "2-fold"
    pooled = summary["pooled"]["image"]
    assert pooled["n"] == 32 and pooled["bootstrap"]["n_groups"] == 8
    assert pooled["intervals"]["balanced_accuracy"]["low"] is not None
    assert "Pooled over folds" in report and "[95 % intervals: percentile bootstrap" in report


def test_cross_validation_holds_out_one_experiment_per_fold(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data", n_experiments=2, wells_per_class=2, fields=1)
    cfg = validate_mapping(
        TrainerConfig,
        tiny_config(manifest, tmp_path / "cv", optim__epochs=1, split__val_fraction=0.5),
        "t",
    )
    summary = run_cross_validation(cfg)  # --cv without K
    assert summary["scheme"] == "leave-one-experiment-out"
    assert [f["split"] for f in summary["folds"]] == ["holdout-exp0", "holdout-exp1"]
    for fold in summary["folds"]:
        exp = fold["split"].removeprefix("holdout-")
        assert {p["experiment"] for p in fold["test"]["predictions"]} == {exp}
    assert (tmp_path / "cv" / "holdout-exp1" / "best.pt").is_file()
    assert summary["pooled"]["image"]["n"] == 16
    assert summary["pooled"]["warnings"]  # 4 wells per class: unstable, and it says so


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
