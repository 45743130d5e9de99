"""`stemwatch train`: Train a CNN on labelled images.

``stemwatch train --config train.yaml`` or the short form
``stemwatch train DATA_DIR_OR_MANIFEST -o RUN_DIR [--architecture fastnet] [--epochs N]``;
``--cv K`` runs K-fold grouped cross-validation. Under torchrun (RANK/WORLD_SIZE set:
``torchrun --nproc-per-node N -m stemwatch train ...``) it runs data-parallel via
:mod:`trainer.distributed`.
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
    p.add_argument("--cv", type=int, metavar="K", help="K-fold grouped cross-validation")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a finished or started run in RUN_DIR (its best.pt is lost)",
    )


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


RUN_FILES = ("best.pt", "last.pt", "summary.json")


def check_run_dir(out_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to train into a folder that already holds a run, unless asked to resume it or
    to overwrite it: a trained ``best.pt`` is never replaced silently."""
    if resume or overwrite or not out_dir.is_dir():
        return
    found = [f for f in RUN_FILES if (out_dir / f).exists()]
    found += [d.name for d in sorted(out_dir.glob("fold*")) if (d / "best.pt").exists()]
    if found:
        raise ConfigError(
            f"{out_dir}: already holds a run ({', '.join(found)}); pass --resume to continue "
            "it, --overwrite to replace it, or choose another -o RUN_DIR"
        )


def run(args: argparse.Namespace) -> int:
    import json

    overwrite = bool(getattr(args, "overwrite", False))
    if "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from trainer.distributed import run_distributed

        cfg = config_from_args(args)
        check_run_dir(cfg.runtime.out_dir, resume=args.resume, overwrite=overwrite)
        return run_distributed(cfg, resume=args.resume)

    from trainer.train import run_cross_validation, run_training

    cfg = config_from_args(args)
    check_run_dir(cfg.runtime.out_dir, resume=args.resume, overwrite=overwrite)
    if args.cv:
        summary = run_cross_validation(cfg, args.cv, resume=args.resume)
        img = summary.get("image", {})
        out: dict[str, Any] = {
            k: f"{img[k]['mean']:.3f} ± {img[k]['sd']:.3f}"
            for k in ("accuracy", "balanced_accuracy", "roc_auc")
            if k in img
        }
    else:
        summary = run_training(cfg, resume=args.resume)
        test = summary.get("test", {}).get("image", {})
        out = {k: test[k] for k in ("accuracy", "balanced_accuracy", "roc_auc", "ece") if k in test}
        out["best_checkpoint"] = str(summary.get("best_checkpoint"))
        out["temperature"] = round(float(summary.get("temperature", 1.0)), 4)
    print(json.dumps({"run_dir": str(cfg.runtime.out_dir), **out}, indent=2))
    return 0
