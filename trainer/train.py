"""The training loop: seeded, resumable, early-stopping, class-balanced, AMP on CUDA.

Each epoch draws its sample order, augmentation and dropout from generators seeded by
``(seed, epoch)``, so resuming from the last checkpoint reproduces an uninterrupted run.
:func:`run_training` is the whole pipeline of one run (data, optics, split, fit, calibrate,
test); :func:`run_cross_validation` repeats it over folds: one experiment held out per fold
when the data has two or more, else grouped K-fold.

What a run records about itself: the split image by image (in the checkpoint, with the data
set hash, so ``stemwatch evaluate`` finds the held-out images and refuses the seen ones), the
held-out figures with 95 % intervals over the split's groups (in ``best.pt``'s metrics and so
in the exported model), the pixel size and the downsampling derived from it, and whether the
images came from the synthetic microscope. A run folder that holds a model is never
overwritten silently (:func:`check_run_dir`).
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from stemwatch.core.aggregate import image_probabilities
from stemwatch.core.errors import ConfigError
from stemwatch.core.manifest import SOURCE_COLUMN, write_manifest
from trainer.augment import augment_batch
from trainer.calibrate import expected_calibration_error, fit_temperature, softmax
from trainer.config import TrainerConfig
from trainer.data import DataError, Sample, TileCache, TileSet, load_samples, provenance
from trainer.evaluate import (
    evaluate_tiles,
    heldout_summary,
    pooled_predictions,
    summarise_folds,
)
from trainer.optics import resolve_optics
from trainer.predict import autocast, predict_logits
from trainer.report import write_cv_report, write_report
from trainer.splits import (
    Split,
    experiments_of,
    kfold_splits,
    leave_one_experiment_out,
    split_record,
    train_val_test_split,
)

log = logging.getLogger(__name__)

BEST_NAME = "best.pt"
LAST_NAME = "last.pt"
METRICS_NAME = "metrics.csv"
TEST_MANIFEST_NAME = "test_manifest.csv"


@dataclass(frozen=True)
class DistContext:
    """Rank and world size of a data-parallel run (a single process is rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


@dataclass
class FitResult:
    """What :class:`Trainer.fit` produced."""

    best_epoch: int
    best_val_loss: float
    epochs_run: int
    stopped_early: bool
    temperature: float
    ece_before: float
    ece_after: float
    history: list[dict[str, float]] = field(default_factory=list)
    best_path: Path | None = None
    last_path: Path | None = None


# ---------------------------------------------------------------- runtime choices


def resolve_device(choice: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU falls back, logged."""
    if choice in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    if choice == "cuda":
        log.warning("runtime.device=cuda but no CUDA device is available; using the CPU")
    return torch.device("cpu")


def amp_enabled(device: torch.device, requested: bool) -> bool:
    """Mixed precision only on CUDA; the choice is logged by the caller."""
    return requested and device.type == "cuda"


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


# ---------------------------------------------------------------- model and checkpoints


def build_model(cfg: TrainerConfig) -> nn.Module:
    """Fresh model from the registry (seeded), optionally initialised from ``init_weights``."""
    from trainer.architectures import create, load_init_weights

    torch.manual_seed(cfg.runtime.seed)
    model = create(
        cfg.model.architecture,
        num_classes=len(cfg.data.classes),
        in_channels=1,
        **cfg.model.kwargs,
    )
    if cfg.model.init_weights is not None:
        load_init_weights(model, cfg.model.init_weights, in_channels=1)
        log.info("initial weights loaded from %s", cfg.model.init_weights)
    return model


def _unwrap(model: nn.Module) -> nn.Module:
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, nn.Module) else model


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module,
    x: np.ndarray,
    *,
    batch_size: int = 128,
    device: torch.device | None = None,
    max_tiles: int = 2048,
) -> None:
    """Recompute batch-norm running statistics over (a fixed subset of) un-augmented training
    tiles ("precise BN"). With few steps per epoch the momentum-averaged statistics lag the
    weights and an eval-mode model predicts one class; exact averages fix that."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or len(x) == 0:
        return
    dev = device or torch.device("cpu")
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    was_training = model.training
    model.train()
    idx = np.linspace(0, len(x) - 1, min(len(x), max_tiles)).round().astype(int)
    for i in range(0, len(idx), batch_size):
        model(torch.from_numpy(np.ascontiguousarray(x[idx[i : i + batch_size]])).to(dev))
    for bn, momentum in zip(bns, momenta, strict=True):
        bn.momentum = momentum
    model.train(was_training)


# ---------------------------------------------------------------- sampling


def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights, normalised to mean 1 over present classes."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(1, (counts > 0).sum()), 0)
    return torch.tensor(w, dtype=torch.float32)


def epoch_order(labels: np.ndarray, balance: str, gen: torch.Generator) -> np.ndarray:
    """Indices of one epoch: a permutation, or a class-balanced draw with replacement."""
    n = len(labels)
    if balance == "sampler":
        counts = np.bincount(labels)
        w = torch.as_tensor(1.0 / counts[labels], dtype=torch.double)
        return torch.multinomial(w, n, replacement=True, generator=gen).numpy()
    return torch.randperm(n, generator=gen).numpy()


def draw_tiles(image: np.ndarray, per_image: int | None, gen: torch.Generator) -> np.ndarray:
    """Indices of at most ``per_image`` tiles of each image (``image``: the image index of
    every tile), drawn at random; all tiles, in order, when ``per_image`` is None."""
    n = len(image)
    if per_image is None or n == 0:
        return np.arange(n)
    perm = torch.randperm(n, generator=gen).numpy()
    by_image = perm[np.argsort(image[perm], kind="stable")]
    ids = image[by_image]
    first = np.r_[0, np.flatnonzero(ids[1:] != ids[:-1]) + 1]
    rank = np.arange(n) - np.repeat(first, np.diff(np.r_[first, n]))
    return np.sort(by_image[rank < per_image])


def shard(order: np.ndarray, dist: DistContext, epoch: int) -> np.ndarray:
    """This rank's share of the epoch order (DistributedSampler pads to equal length)."""
    if not dist.active:
        return order
    from torch.utils.data import DistributedSampler

    sampler: DistributedSampler[int] = DistributedSampler(
        range(len(order)),  # type: ignore[arg-type]
        num_replicas=dist.world_size,
        rank=dist.rank,
        shuffle=False,
    )
    sampler.set_epoch(epoch)
    return order[list(iter(sampler))]


# ---------------------------------------------------------------- the trainer


def _progress(iterable: Sequence[Any], enabled: bool, desc: str) -> Iterator[Any]:
    from tqdm import tqdm

    show = enabled and sys.stderr.isatty()
    return iter(tqdm(iterable, desc=desc, disable=not show, leave=False))


@dataclass
class _Run:
    """The mutable state of one :meth:`Trainer.fit`; ``last.pt`` keeps what resuming needs."""

    model: nn.Module
    train_model: nn.Module
    """``model``, or its DistributedDataParallel wrapper in a data-parallel run."""
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    loss_fn: nn.Module
    scaler: torch.amp.GradScaler | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    best_loss: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    start_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None

    def extra(self, *, finished: bool) -> dict[str, Any]:
        """The early-stopping state a checkpoint carries."""
        return {
            "history": self.history,
            "best_val_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "finished": finished,
        }


class Trainer:
    """Fit one model on ``train`` with early stopping on ``val``; writes into ``out_dir``."""

    def __init__(
        self,
        cfg: TrainerConfig,
        train: TileSet,
        val: TileSet,
        out_dir: Path,
        *,
        dist: DistContext | None = None,
        split_info: dict[str, Any] | None = None,
        device: torch.device | None = None,
        split_images: dict[str, Any] | None = None,
        facts: dict[str, Any] | None = None,
    ) -> None:
        """``split_info``: the groups of each part (``training["split"]``); ``split_images``:
        the image-level record the checkpoints carry (:func:`trainer.splits.split_record`);
        ``facts``: more of the training record (optics, data provenance, data set hash)."""
        self.cfg = cfg
        self.train_set = train
        self.val_set = val
        self.out_dir = out_dir
        self.dist = dist or DistContext()
        self.split_info = split_info or {}
        self.split_images = split_images
        self.facts = facts or {}
        self.device = device or resolve_device(cfg.runtime.device)
        if self.device.type == "cuda" and self.dist.active and self.device.index is None:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        self.amp = amp_enabled(self.device, cfg.runtime.amp)
        self.positive_index = cfg.data.classes.index(cfg.data.positive_class)

    # -- pieces

    def _make_optim(
        self, model: nn.Module
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        o = self.cfg.optim
        opt = torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=o.epochs)
        return opt, sched

    def _loss_fn(self) -> nn.Module:
        o = self.cfg.optim
        weight = None
        if o.balance == "weights":
            weight = class_weights(self.train_set.y, len(self.cfg.data.classes)).to(self.device)
        return nn.CrossEntropyLoss(weight=weight, label_smoothing=o.label_smoothing)

    def _save(
        self,
        path: Path,
        model: nn.Module,
        epoch: int,
        *,
        temperature: float,
        metrics: dict[str, Any],
        extra: dict[str, Any],
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        state: dict[str, torch.Tensor] | None = None,
    ) -> None:
        from trainer.checkpoint import save_checkpoint

        m = _unwrap(model)
        if state is not None:
            m = copy.deepcopy(m)
            m.load_state_dict(state)
        cfg = self.cfg
        save_checkpoint(
            path,
            model=m,
            architecture=cfg.model.architecture,
            arch_kwargs=dict(cfg.model.kwargs),
            class_names=list(cfg.data.classes),
            positive_class=cfg.data.positive_class,
            tiling=cfg.data.tiling.spec(),
            normalisation=cfg.data.normalisation,
            temperature=temperature,
            training=self._training_record(epoch),
            metrics=metrics,
            epoch=epoch,
            optimizer_state=optimizer.state_dict() if optimizer is not None else None,
            scheduler_state=scheduler.state_dict() if scheduler is not None else None,
            extra=extra,
            split=self.split_images,
        )

    def _training_record(self, epoch: int) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "architecture": cfg.model.architecture,
            "epochs": epoch + 1,
            "n_train_tiles": len(self.train_set),
            "n_val_tiles": len(self.val_set),
            "n_train_images": len(self.train_set.samples),
            "split": self.split_info,
            "data": str(cfg.data.manifest or cfg.data.folder or ""),
            "seed": cfg.runtime.seed,
            "world_size": self.dist.world_size,
            "device": self.device.type,
            "amp": self.amp,
            "optim": cfg.optim.model_dump(mode="json"),
            **self.facts,
        }

    def validate(self, model: nn.Module, loss_fn: nn.Module) -> tuple[float, dict[str, float]]:
        """Validation loss (tile level) and accuracy / balanced accuracy at image level."""
        logits = predict_logits(
            _unwrap(model),
            self.val_set.x,
            batch_size=self.cfg.optim.batch_size * 2,
            device=self.device,
            amp=self.amp,
        )
        y = torch.from_numpy(self.val_set.y)
        with torch.no_grad():
            loss = float(nn.functional.cross_entropy(torch.from_numpy(logits).float(), y).item())
        probs = softmax(logits)
        img = image_probabilities(probs, self.val_set.image, len(self.val_set.samples))
        labels = np.array([s.label for s in self.val_set.samples])
        ok = ~np.isnan(img).any(axis=1)
        pred = img[ok].argmax(axis=1)
        lab = labels[ok]
        acc = float((pred == lab).mean()) if len(lab) else float("nan")
        recalls = [float((pred[lab == c] == c).mean()) for c in np.unique(lab)]
        bal = float(np.mean(recalls)) if recalls else float("nan")
        return loss, {"val_loss": loss, "val_accuracy": acc, "val_balanced_accuracy": bal}

    def _train_epoch(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        opt: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler | None,
        epoch: int,
    ) -> float:
        cfg = self.cfg
        seed = cfg.runtime.seed
        torch.manual_seed(seed * 7919 + epoch)  # dropout and other in-model randomness
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        pool = draw_tiles(self.train_set.image, cfg.optim.tiles_per_image, gen)
        order = pool[
            shard(epoch_order(self.train_set.y[pool], cfg.optim.balance, gen), self.dist, epoch)
        ]
        bs = cfg.optim.batch_size
        starts = list(range(0, len(order), bs))
        model.train()
        total, count = 0.0, 0
        for start in _progress(
            starts, cfg.runtime.progress and self.dist.is_main, f"epoch {epoch + 1}"
        ):
            idx = order[start : start + bs]
            if len(idx) < 2 and len(order) > 1:  # batch norm cannot train on one sample
                continue
            xb = torch.from_numpy(self.train_set.x[idx]).to(self.device)
            yb = torch.from_numpy(self.train_set.y[idx]).to(self.device)
            xb = augment_batch(xb, cfg.augment, gen)
            opt.zero_grad(set_to_none=True)
            with autocast(self.device, self.amp):
                loss = loss_fn(model(xb).float(), yb)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            total += float(loss.item()) * len(idx)
            count += len(idx)
        return total / max(1, count)

    # -- the loop

    def fit(self, *, resume: bool = False, stop_after_epochs: int | None = None) -> FitResult:
        """Train until ``optim.epochs`` or early stopping; resume from ``last.pt`` if asked.

        ``stop_after_epochs`` ends this call after that many epochs (simulates an
        interruption; used by tests and for time-boxed runs) without calibrating.

        The steps: :meth:`_prepare` (model, optimiser, state, resume), then per epoch
        :meth:`_stop_reason`, :meth:`_run_epoch` (train, validate), :meth:`_track_best`
        (early stopping) and :meth:`_checkpoint`; at the end :meth:`_calibrate` the best
        model and :meth:`_finish` (final checkpoints).
        """
        run = self._prepare(resume)
        stopped_early = interrupted = False
        fit_start = time.perf_counter()
        for epoch in range(run.start_epoch, self.cfg.optim.epochs):
            done = epoch - run.start_epoch  # epochs of this call
            reason = self._stop_reason(run, done, stop_after_epochs, fit_start)
            if reason is not None:
                interrupted = reason == "interrupted"
                stopped_early = not interrupted
                break
            val_metrics, row = self._run_epoch(run, epoch)
            improved = self._track_best(run, epoch, val_metrics["val_loss"])
            self._log_epoch(epoch, row, improved)
            if self.dist.is_main:
                self._checkpoint(run, epoch, improved, val_metrics)
        result = FitResult(
            best_epoch=run.best_epoch + 1,
            best_val_loss=run.best_loss,
            epochs_run=len(run.history),
            stopped_early=stopped_early,
            temperature=1.0,
            ece_before=float("nan"),
            ece_after=float("nan"),
            history=run.history,
            best_path=self.best_path,
            last_path=self.last_path,
        )
        if interrupted or run.best_state is None:
            return result
        best_model, result.temperature, result.ece_before, result.ece_after = self._calibrate(
            run, run.best_state
        )
        if self.dist.is_main:
            self._finish(run, best_model, result)
        self.best_model = best_model
        return result

    # -- the steps of fit

    @property
    def best_path(self) -> Path:
        return self.out_dir / BEST_NAME

    @property
    def last_path(self) -> Path:
        return self.out_dir / LAST_NAME

    def _prepare(self, resume: bool) -> _Run:
        """Model, optimiser, schedule and loss; the state of ``last.pt`` when resuming."""
        cfg = self.cfg
        if cfg.runtime.threads:
            torch.set_num_threads(cfg.runtime.threads)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        log.info(
            "training %s on %s (AMP %s) with %d train / %d val tiles, world size %d",
            cfg.model.architecture,
            self.device.type,
            "on" if self.amp else "off",
            len(self.train_set),
            len(self.val_set),
            self.dist.world_size,
        )
        model = build_model(cfg).to(self.device)
        opt, sched = self._make_optim(model)
        run = _Run(model=model, train_model=model, opt=opt, sched=sched, loss_fn=self._loss_fn())
        if resume and self.last_path.is_file():
            self._resume(run)
        if self.dist.active:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            run.train_model = DistributedDataParallel(run.model, device_ids=ids)
        run.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        return run

    def _stop_reason(
        self,
        run: _Run,
        epochs_this_call: int,
        stop_after_epochs: int | None,
        fit_start: float,
    ) -> str | None:
        """Why training stops before the next epoch: ``patience``, ``interrupted`` (this call's
        epoch budget), ``time`` (``optim.max_minutes``, decided by rank 0), or None."""
        optim = self.cfg.optim
        if run.bad_epochs >= optim.patience:
            return "patience"
        if stop_after_epochs is not None and epochs_this_call >= stop_after_epochs:
            return "interrupted"
        over_time = bool(
            optim.max_minutes and time.perf_counter() - fit_start > 60 * optim.max_minutes
        )
        if self._agree(over_time):  # a collective call under DDP: every rank reaches it
            log.info("optim.max_minutes=%s reached; stopping", optim.max_minutes)
            return "time"
        return None

    def _run_epoch(self, run: _Run, epoch: int) -> tuple[dict[str, float], dict[str, float]]:
        """One epoch: train, step the schedule, recompute batch-norm statistics, validate.
        Returns the validation metrics and the epoch's row of metrics.csv."""
        t0 = time.perf_counter()
        train_loss = self._train_epoch(run.train_model, run.loss_fn, run.opt, run.scaler, epoch)
        lr = float(run.opt.param_groups[0]["lr"])
        run.sched.step()
        recalibrate_batchnorm(
            _unwrap(run.model),
            self.train_set.x,
            batch_size=self.cfg.optim.batch_size * 2,
            device=self.device,
        )
        _, val_metrics = self.validate(run.model, run.loss_fn)
        row = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            **val_metrics,
            "lr": lr,
            "seconds": time.perf_counter() - t0,
        }
        run.history.append(row)
        return val_metrics, row

    def _track_best(self, run: _Run, epoch: int, val_loss: float) -> bool:
        """Keep the best weights by validation loss; count epochs without improvement."""
        improved = val_loss < run.best_loss - 1e-6
        if improved:
            run.best_loss, run.best_epoch, run.bad_epochs = val_loss, epoch, 0
            run.best_state = {
                k: v.detach().clone() for k, v in _unwrap(run.model).state_dict().items()
            }
        else:
            run.bad_epochs += 1
        return improved

    def _log_epoch(self, epoch: int, row: dict[str, float], improved: bool) -> None:
        log.info(
            "epoch %d/%d train_loss %.4f val_loss %.4f val_bal_acc %.3f%s",
            epoch + 1,
            self.cfg.optim.epochs,
            row["train_loss"],
            row["val_loss"],
            row["val_balanced_accuracy"],
            " *" if improved else "",
        )

    def _checkpoint(
        self, run: _Run, epoch: int, improved: bool, val_metrics: dict[str, float]
    ) -> None:
        """metrics.csv, ``best.pt`` when the epoch improved, ``last.pt`` always (rank 0)."""
        self._write_metrics(run.history)
        extra = run.extra(finished=False)
        if improved:
            self._save(
                self.best_path, run.model, epoch, temperature=1.0, metrics=val_metrics, extra=extra
            )
        self._save(
            self.last_path,
            run.model,
            epoch,
            temperature=1.0,
            metrics=val_metrics,
            extra=extra,
            optimizer=run.opt,
            scheduler=run.sched,
        )

    def _calibrate(
        self, run: _Run, best_state: dict[str, torch.Tensor]
    ) -> tuple[nn.Module, float, float, float]:
        """The best model with its temperature fitted on the validation tiles, and the
        validation ECE before and after."""
        best_model = copy.deepcopy(_unwrap(run.model))
        best_model.load_state_dict(best_state)
        logits = predict_logits(best_model, self.val_set.x, device=self.device, amp=self.amp)
        ece_before = expected_calibration_error(softmax(logits), self.val_set.y)
        t = fit_temperature(logits, self.val_set.y) if self.cfg.runtime.calibrate else 1.0
        ece_after = expected_calibration_error(softmax(logits, t), self.val_set.y)
        log.info("temperature %.3f: val ECE %.4f -> %.4f", t, ece_before, ece_after)
        return best_model, t, ece_before, ece_after

    def _finish(self, run: _Run, best_model: nn.Module, result: FitResult) -> None:
        """Final checkpoints: the calibrated best model, and ``last.pt`` marked finished."""
        extra = run.extra(finished=True)
        best_row = next((h for h in run.history if h["epoch"] == run.best_epoch + 1), {})
        metrics = {
            **best_row,
            "val_ece_before": result.ece_before,
            "val_ece_after": result.ece_after,
        }
        self._save(
            self.best_path,
            best_model,
            run.best_epoch,
            temperature=result.temperature,
            metrics=metrics,
            extra=extra,
        )
        self._save(
            self.last_path,
            run.model,
            max(0, len(run.history) - 1),
            temperature=1.0,
            metrics=metrics,
            extra=extra,
            optimizer=run.opt,
            scheduler=run.sched,
        )

    def _agree(self, flag: bool) -> bool:
        """Rank 0's decision on every rank (wall-clock checks differ between processes)."""
        if not self.dist.active:
            return flag
        import torch.distributed as tdist

        t = torch.tensor([int(flag)], device=self.device)
        tdist.broadcast(t, src=0)
        return bool(t.item())

    def _resume(self, run: _Run) -> None:
        """Continue from ``last.pt``: weights, optimiser, schedule and early-stopping state."""
        from trainer.checkpoint import load_checkpoint

        ck = load_checkpoint(self.last_path, expected_architecture=self.cfg.model.architecture)
        run.model.load_state_dict(ck.model_state)
        if ck.optimizer_state is not None:
            run.opt.load_state_dict(ck.optimizer_state)
        if ck.scheduler_state is not None:
            run.sched.load_state_dict(ck.scheduler_state)
        extra = dict(ck.extra or {})
        run.start_epoch = ck.epoch + 1
        run.history = list(extra.get("history", []))
        run.best_loss = float(extra.get("best_val_loss", math.inf))
        run.best_epoch = int(extra.get("best_epoch", -1))
        run.bad_epochs = int(extra.get("bad_epochs", 0))
        if self.best_path.is_file():
            run.best_state = load_checkpoint(self.best_path).model_state
        if extra.get("finished"):
            log.info("%s: run already finished; nothing to resume", self.last_path)
            run.start_epoch = self.cfg.optim.epochs
        else:
            log.info("resuming from %s at epoch %d", self.last_path, run.start_epoch + 1)

    def _write_metrics(self, history: list[dict[str, float]]) -> None:
        path = self.out_dir / METRICS_NAME
        if not history:
            return
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)


# ---------------------------------------------------------------- whole runs


@dataclass
class PreparedData:
    """Readable samples, their tile cache, the config with its downsampling resolved, and the
    optics record (pixel size, factor and why)."""

    samples: list[Sample]
    cache: TileCache
    cfg: TrainerConfig
    optics: dict[str, Any] = field(default_factory=dict)


def prepare_data(cfg: TrainerConfig) -> PreparedData:
    """Load the sample list, resolve the downsampling from the pixel size and decode every
    image once (unreadable ones listed, skipped)."""
    d = cfg.data
    samples = load_samples(manifest=d.manifest, folder=d.folder, classes=d.classes)
    cfg, optics = resolve_optics(cfg, samples)
    cache = TileCache(cfg.data.tiling.spec(), d.normalisation, page=d.page, keep=d.cache)
    t0 = time.perf_counter()
    readable = cache.warm(
        samples, workers=d.io_workers, max_unreadable_fraction=d.max_unreadable_fraction
    )
    log.info(
        "prepared %d images (%d unreadable) in %.1f s",
        len(readable),
        len(samples) - len(readable),
        time.perf_counter() - t0,
    )
    return PreparedData(readable, cache, cfg, optics)


def _subset(data: PreparedData, idx: np.ndarray) -> TileSet:
    return data.cache.tileset([data.samples[i] for i in idx.tolist()])


def check_run_dir(out_dir: Path, *, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse to train into a folder that already holds a model, unless resuming it or asked
    to overwrite it: a second run must not silently replace the ``best.pt`` of the first."""
    if resume or overwrite or not out_dir.is_dir():
        return
    found = sorted(p for name in (BEST_NAME, LAST_NAME) for p in out_dir.glob(f"**/{name}"))
    if found:
        raise ConfigError(
            f"{out_dir}: already holds a trained model ({', '.join(str(p) for p in found[:3])}"
            f"{' ...' if len(found) > 3 else ''}); pass --resume to continue that run, "
            "--overwrite to replace it, or choose another run folder (-o)"
        )


def write_run_files(cfg: TrainerConfig, out_dir: Path, splits: list[dict[str, Any]]) -> None:
    """config.yaml (the config used, downsampling resolved) and split.json (which groups
    went where, and the data set hash)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(
        yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
    )
    payload: Any = splits[0] if len(splits) == 1 else {"folds": splits}
    (out_dir / "split.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")


def write_test_manifest(record: dict[str, Any], out_dir: Path) -> Path | None:
    """``test_manifest.csv``: the held-out images as a manifest (paths relative to the run
    folder), for evaluating an exported model on exactly them."""
    rows = []
    for im in record["images"]:
        if im["part"] != "test":
            continue
        try:
            rel = os.path.relpath(im["path"], out_dir.resolve())
        except ValueError:  # another drive (Windows): keep it absolute
            rel = im["path"]
        rows.append({**im, "path": Path(rel).as_posix()})
    if not rows:
        return None
    return write_manifest(
        out_dir / TEST_MANIFEST_NAME, rows, extra_columns=(SOURCE_COLUMN, "content_hash")
    )


def _record(data: PreparedData, split: Split) -> dict[str, Any]:
    cfg = data.cfg
    return split_record(
        split,
        data.samples,
        group_by=cfg.split.group_by,
        class_names=cfg.data.classes,
        content_hash=data.cache.content_hash,
        data=str(cfg.data.manifest or cfg.data.folder or ""),
    )


def _describe(data: PreparedData, split: Split, record: dict[str, Any]) -> dict[str, Any]:
    info = split.describe(data.samples, data.cfg.split.group_by)
    info["data_hash"] = record["data_hash"]
    return info


def train_on_split(
    cfg: TrainerConfig,
    data: PreparedData,
    split: Split,
    out_dir: Path,
    *,
    resume: bool = False,
    dist: DistContext | None = None,
    record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit on one split, then evaluate the calibrated best model on its test part, with 95 %
    intervals over the split's groups; the figures go into ``best.pt``'s metrics."""
    record = record or _record(data, split)
    group_by = cfg.split.group_by
    facts = {
        "optics": data.optics,
        "data_provenance": provenance(data.samples),
        "data_hash": record["data_hash"],
    }
    trainer = Trainer(
        cfg,
        _subset(data, split.train),
        _subset(data, split.val),
        out_dir,
        dist=dist,
        split_info=_describe(data, split, record),
        split_images=record,
        facts=facts,
    )
    fit = trainer.fit(resume=resume)
    main = dist is None or dist.is_main
    summary: dict[str, Any] = {
        "split": split.name,
        "best_epoch": fit.best_epoch,
        "epochs_run": fit.epochs_run,
        "stopped_early": fit.stopped_early,
        "temperature": fit.temperature,
        "val_ece_before": fit.ece_before,
        "val_ece_after": fit.ece_after,
        "best_checkpoint": str(fit.best_path),
        **facts,
    }
    if hasattr(trainer, "best_model"):
        summary["param_checksum"] = parameter_checksum(trainer.best_model)
    if len(split.test) and hasattr(trainer, "best_model"):
        test = _subset(data, split.test)
        logits = predict_logits(trainer.best_model, test.x, device=trainer.device)
        probs = softmax(logits, fit.temperature)
        pos = cfg.data.classes.index(cfg.data.positive_class)
        summary["test"] = evaluate_tiles(probs, test, cfg.data.classes, pos, group_by=group_by)
        summary["test"]["data_description"] = (
            f"the held-out test split {split.name!r} of {record['data'] or 'the data'} (data set "
            f"{record['data_hash'][:19]})"
        )
        summary["test"]["held_out"] = True
        summary["test"]["image"]["ece_uncalibrated"] = expected_calibration_error(
            image_probabilities(softmax(logits), test.image, len(test.samples)),
            np.array([s.label for s in test.samples]),
        )
        if main and fit.best_path is not None and fit.best_path.is_file():
            from trainer.checkpoint import update_checkpoint

            held_out = heldout_summary(summary["test"], split=split.name)
            update_checkpoint(fit.best_path, metrics={"test": held_out})
    if main:
        write_test_manifest(record, out_dir)
    return summary


def parameter_checksum(model: nn.Module) -> float:
    """Sum of all weights and buffers (equal across data-parallel ranks that stayed in sync)."""
    return float(sum(float(v.double().sum()) for v in model.state_dict().values()))


def run_training(
    cfg: TrainerConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    dist: DistContext | None = None,
) -> dict[str, Any]:
    """One run: data, optics, grouped split, fit, calibrate, test; files in
    ``runtime.out_dir`` (refused when it holds a model, unless ``resume`` or ``overwrite``)."""
    out_dir = cfg.runtime.out_dir
    check_run_dir(out_dir, resume=resume, overwrite=overwrite)
    seed_everything(cfg.runtime.seed)
    data = prepare_data(cfg)
    cfg = data.cfg
    s = cfg.split
    split = train_val_test_split(
        data.samples,
        group_by=s.group_by,
        test_fraction=s.test_fraction,
        val_fraction=s.val_fraction,
        holdout_experiment=s.holdout_experiment,
        seed=s.seed,
    )
    record = _record(data, split)
    if dist is None or dist.is_main:
        write_run_files(cfg, out_dir, [_describe(data, split, record)])
    n_exp = len(experiments_of(data.samples))
    if n_exp >= 2 and s.holdout_experiment is None:
        log.info(
            "the data has %d experiments: `stemwatch train --cv` holds out one experiment per "
            "fold, the figure that tells how the model does on a new experiment",
            n_exp,
        )
    summary = train_on_split(cfg, data, split, out_dir, resume=resume, dist=dist, record=record)
    if dist is None or dist.is_main:
        _write_summary(out_dir, summary, cfg)
    return summary


def cross_validation_splits(
    samples: Sequence[Sample], cfg: TrainerConfig, k: int | None
) -> tuple[list[Split], str]:
    """The folds and the scheme's name: ``k`` grouped folds when ``k`` is given, else
    ``split.cross_validation`` (``auto``: one experiment per fold when there are two or
    more experiments, else ``split.k_folds`` grouped folds)."""
    s = cfg.split
    experiments = experiments_of(samples)
    scheme = "k-fold" if k is not None else s.cross_validation
    if scheme == "auto":
        scheme = "leave-one-experiment-out" if len(experiments) >= 2 else "k-fold"
    if scheme == "leave-one-experiment-out":
        folds = leave_one_experiment_out(
            samples, group_by=s.group_by, val_fraction=s.val_fraction, seed=s.seed
        )
        return folds, scheme
    if len(experiments) >= 2:
        log.warning(
            "the data has %d experiments but the folds mix them (K-fold); `--cv` without K "
            "holds out one experiment per fold",
            len(experiments),
        )
    k = k or s.k_folds
    folds = kfold_splits(
        samples, group_by=s.group_by, k=k, val_fraction=s.val_fraction, seed=s.seed
    )
    return folds, f"{k}-fold"


def run_cross_validation(
    cfg: TrainerConfig,
    k: int | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Cross-validation (:func:`cross_validation_splits`); each fold in ``out_dir/NAME``;
    report with mean ± sd over folds and the pooled figure with its 95 % interval."""
    out_dir = cfg.runtime.out_dir
    check_run_dir(out_dir, resume=resume, overwrite=overwrite)
    seed_everything(cfg.runtime.seed)
    data = prepare_data(cfg)
    cfg = data.cfg
    splits, scheme = cross_validation_splits(data.samples, cfg, k)
    records = [_record(data, sp) for sp in splits]
    write_run_files(
        cfg, out_dir, [_describe(data, sp, rec) for sp, rec in zip(splits, records, strict=True)]
    )
    folds = []
    for sp, rec in zip(splits, records, strict=True):
        log.info("cross-validation (%s): %s", scheme, sp.name)
        folds.append(train_on_split(cfg, data, sp, out_dir / sp.name, resume=resume, record=rec))
    tested = [f["test"] for f in folds if "test" in f]
    if not tested:
        raise DataError("no fold had test images; add groups")
    pos = cfg.data.classes.index(cfg.data.positive_class)
    summary = {
        "k": len(splits),
        "scheme": scheme,
        "group_by": cfg.split.group_by,
        "folds": folds,
        "image": summarise_folds([t["image"] for t in tested]),
        "tile": summarise_folds([t["tile"] for t in tested]),
        "pooled": pooled_predictions(
            [p for t in tested for p in t["predictions"]],
            cfg.data.classes,
            pos,
            group_by=cfg.split.group_by,
        ),
        "optics": data.optics,
        "data_provenance": provenance(data.samples),
        "data_hash": records[0]["data_hash"],
    }
    _write_summary(out_dir, summary, cfg)
    return summary


def _write_summary(out_dir: Path, summary: dict[str, Any], cfg: TrainerConfig) -> None:
    if "folds" in summary:
        write_cv_report(summary, out_dir, title=f"{cfg.model.architecture} cross-validation")
    elif "test" in summary:
        write_report(summary["test"], out_dir, title=f"{cfg.model.architecture} test set")
    (out_dir / "summary.json").write_text(
        json.dumps(_jsonable(summary), indent=2), encoding="utf-8"
    )


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (np.floating, np.integer)):
        return _jsonable(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def env_world() -> DistContext | None:
    """The torchrun rank / world size from the environment, or None outside torchrun."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return DistContext(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]))
    return None
