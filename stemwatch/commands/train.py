"""`stemwatch train`: Train a CNN on labelled images.

``stemwatch train --config train.yaml`` or the short form
``stemwatch train DATA_DIR_OR_MANIFEST -o RUN_DIR [--architecture fastnet] [--epochs N]``;
``--cv`` cross-validates (one experiment held out per fold when the data has two or more,
else ``split.k_folds`` grouped folds), ``--cv K`` runs K grouped folds. A run folder that holds
a model is refused unless ``--resume`` or ``--overwrite``. Under torchrun (RANK/WORLD_SIZE
set: ``torchrun --nproc-per-node N -m stemwatch train ...``) it runs data-parallel via
:mod:`trainer.distributed`. The figures printed are the held-out ones, each with its 95 %
interval over the split's groups.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stemwatch.core.errors import ConfigError

if TYPE_CHECKING:
    from trainer.config import TrainerConfig


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The train flags."""
    p.add_argument(
        "data",
        nargs="?",
        type=Path,
        help="a manifest CSV or a folder with one sub-folder per class (overrides the config)",
    )
    p.add_argument(
        "--config", type=Path, help="trainer YAML (`stemwatch config trainer --example`)"
    )
    p.add_argument("-o", "--out", type=Path, help="run directory (overrides runtime.out_dir)")
    p.add_argument("--architecture", help="registry name (overrides model.architecture)")
    p.add_argument("--epochs", type=int, help="maximum epochs (overrides optim.epochs)")
    p.add_argument("--init-weights", type=Path, help="start from these weights (.pth/.pt)")
    p.add_argument(
        "--cv",
        nargs="?",
        const="auto",
        type=_folds,
        metavar="K",
        help="cross-validate: alone, one experiment held out per fold when the data has two or "
        "more (split.cross_validation), else split.k_folds grouped folds; with K, K grouped "
        "folds. Put it after DATA",
    )
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="train afresh into a run folder that already holds a model (its files are replaced)",
    )


def _folds(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of folds; give K >= 2, or --cv alone after DATA"
        ) from None
    if k < 2:
        raise argparse.ArgumentTypeError(f"--cv {k}: cross-validation needs K >= 2 folds")
    return k


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "train",
        help="Train a CNN on labelled images",
        description=(
            "Train a CNN on labelled images. Short form: stemwatch train DATA -o RUN_DIR; "
            "everything else lives in the config (--config)."
        ),
    )
    add_train_arguments(p)
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> TrainerConfig:
    """The config file (or defaults) with the command-line overrides applied and validated."""
    from stemwatch.core.config import load_config, validate_mapping
    from trainer.config import TrainerConfig

    base = load_config(TrainerConfig, args.config)
    data: dict[str, Any] = base.model_dump()
    if args.data is not None:
        if args.data.is_dir():
            data["data"]["folder"], data["data"]["manifest"] = args.data, None
        elif args.data.suffix.lower() == ".csv":
            data["data"]["manifest"], data["data"]["folder"] = args.data, None
        else:
            raise ConfigError(
                f"{args.data}: not a folder or a .csv manifest; give a folder with one "
                "sub-folder per class, or a manifest CSV"
            )
    if args.out is not None:
        data["runtime"]["out_dir"] = args.out
    if args.architecture is not None:
        data["model"]["architecture"] = args.architecture
    if args.epochs is not None:
        data["optim"]["epochs"] = args.epochs
    if args.init_weights is not None:
        data["model"]["init_weights"] = args.init_weights
    source = str(args.config) if args.config else "command line"
    cfg = validate_mapping(TrainerConfig, data, source)
    if cfg.data.manifest is None and cfg.data.folder is None:
        raise ConfigError(
            f"{source}: no training data; pass DATA (a folder or manifest) or set data.manifest"
        )
    return cfg


def held_out_figures(image: dict[str, Any]) -> dict[str, Any]:
    """``{figure: "value [low, high]"}`` plus what the intervals are over."""
    from trainer.metric_intervals import (
        FIGURES,
        UNIT_PLURAL,
        from_hours_text,
        hours_interval_text,
        interval_text,
    )

    intervals = image.get("intervals", {})
    out: dict[str, Any] = {k: interval_text(intervals[k]) for k in FIGURES if k in intervals}
    by_hours = image.get("accuracy_by_hours") or {}
    if by_hours:
        out["hours_since_induction"] = {
            f"{h} h": f"accuracy {hours_interval_text(v)}; balanced accuracy from {h} h on "
            f"{from_hours_text(v)}"
            for h, v in sorted(by_hours.items(), key=lambda kv: float(kv[0]))
        }
    boot = image.get("bootstrap") or {}
    if boot:
        units = UNIT_PLURAL.get(boot.get("unit", ""), "groups")
        out["intervals"] = f"95 % bootstrap intervals over {boot.get('n_groups')} {units}"
    return out


def run(args: argparse.Namespace) -> int:
    import json

    if "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from trainer.distributed import run_distributed

        return run_distributed(config_from_args(args), resume=args.resume, overwrite=args.overwrite)

    from trainer.train import run_cross_validation, run_training

    cfg = config_from_args(args)
    if args.cv is not None:
        k = None if args.cv == "auto" else int(args.cv)
        summary = run_cross_validation(cfg, k, resume=args.resume, overwrite=args.overwrite)
        img = summary.get("image", {})
        out: dict[str, Any] = {"cross_validation": f"{summary['scheme']}, {summary['k']} folds"}
        out["mean_sd_over_folds"] = {
            k: f"{img[k]['mean']:.3f} ± {img[k]['sd']:.3f}"
            for k in ("balanced_accuracy", "accuracy", "roc_auc")
            if k in img
        }
        out["pooled"] = held_out_figures(summary.get("pooled", {}).get("image", {}))
        warnings = summary.get("pooled", {}).get("warnings", [])
    else:
        summary = run_training(cfg, resume=args.resume, overwrite=args.overwrite)
        test = summary.get("test", {})
        out = {"held_out": held_out_figures(test.get("image", {}))} if test else {}
        warnings = test.get("warnings", [])
        out["best_checkpoint"] = str(summary.get("best_checkpoint"))
        out["temperature"] = round(float(summary.get("temperature", 1.0)), 4)
    if warnings:
        out["warnings"] = warnings
    print(json.dumps({"run_dir": str(cfg.runtime.out_dir), **out}, indent=2))
    return 0
