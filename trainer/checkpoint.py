"""The training checkpoint: one ``.pt`` file with the weights and everything needed to rebuild,
resume, calibrate, evaluate and export the model.

``split`` is the run's split, image by image (:func:`trainer.splits.split_record`): the
evaluation of a checkpoint finds its held-out images there and refuses the seen ones. It stays
in the checkpoint; the exported model carries only the groups (``training["split"]``).

Written atomically (temp file, then rename) so an interrupted save never destroys the previous
checkpoint; read with ``torch.load(weights_only=True)``, so loading runs no pickled code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from stemwatch import __version__
from stemwatch.core.errors import StemwatchError
from stemwatch.core.imaging import NormalisationRecipe, TilingSpec
from trainer.architectures import create, get_info
from trainer.architectures.weights import torch_load_reason

FORMAT = "stemwatch-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(StemwatchError):
    """A file that is not a stemwatch checkpoint, or not of the expected architecture."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint. ``build_model()`` gives the network in eval mode."""

    path: Path
    architecture: str
    arch_kwargs: dict[str, Any]
    model_state: dict[str, Tensor]
    class_names: list[str]
    positive_class: str
    tiling: TilingSpec
    normalisation: NormalisationRecipe
    temperature: float = 1.0
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0
    optimizer_state: dict[str, Any] | None = None
    scheduler_state: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None
    stemwatch_version: str = ""
    created: str = ""
    split: dict[str, Any] | None = None
    """Every image of the run's split with its part and content hash; None in checkpoints
    written before stemwatch recorded it."""

    @property
    def positive_index(self) -> int:
        return self.class_names.index(self.positive_class)

    @property
    def in_channels(self) -> int:
        return int(self.arch_kwargs.get("in_channels", 1))

    def build_model(self) -> nn.Module:
        """The architecture with this checkpoint's weights, in eval mode."""
        model = create(self.architecture, **self.arch_kwargs)
        model.load_state_dict(self.model_state)
        return model.eval()


def _plain(value: Any, what: str) -> Any:
    """JSON-safe copy (paths and other objects become strings) of a summary dict."""
    if value is None:
        return {}
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint {what} must be JSON-like: {exc}") from None


def _normalised_kwargs(
    arch_kwargs: dict[str, Any] | None, class_names: list[str]
) -> dict[str, Any]:
    kwargs = dict(arch_kwargs or {})
    n = kwargs.setdefault("num_classes", len(class_names))
    if n != len(class_names):
        raise ValueError(f"arch_kwargs num_classes={n} but {len(class_names)} class names")
    kwargs.setdefault("in_channels", 1)
    return kwargs


def save_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    architecture: str,
    arch_kwargs: dict[str, Any] | None,
    class_names: list[str],
    positive_class: str,
    tiling: TilingSpec,
    normalisation: NormalisationRecipe,
    temperature: float = 1.0,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    epoch: int = 0,
    optimizer_state: dict[str, Any] | None = None,
    scheduler_state: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    split: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically; returns its path.

    ``arch_kwargs`` are the keyword arguments of ``create(architecture, ...)`` (num_classes and
    in_channels are filled in). ``training`` and ``metrics`` must be JSON-like (they end up in
    the ONNX metadata). The model's state dict is checked against the architecture first.
    """
    get_info(architecture)
    if positive_class not in class_names:
        raise ValueError(f"positive_class {positive_class!r} is not one of {class_names}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    kwargs = _normalised_kwargs(arch_kwargs, class_names)
    with torch.device("meta"):
        reference = create(architecture, **kwargs).state_dict()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    wrong = sorted(set(reference) ^ set(state)) + [
        k for k in reference if k in state and reference[k].shape != state[k].shape
    ]
    if wrong:
        raise ValueError(
            f"model does not match architecture {architecture!r} with {kwargs}: "
            f"differing keys/shapes {wrong[:6]}"
        )
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "arch_kwargs": _plain(kwargs, "arch_kwargs"),
        "model_state": state,
        "class_names": list(class_names),
        "positive_class": positive_class,
        "tiling": tiling.model_dump(),
        "normalisation": normalisation.model_dump(),
        "temperature": float(temperature),
        "training": _plain(training, "training"),
        "metrics": _plain(metrics, "metrics"),
        "epoch": int(epoch),
        "optimizer_state": optimizer_state,
        "scheduler_state": scheduler_state,
        "extra": extra,
        "split": _plain(split, "split") if split is not None else None,
        "stemwatch_version": __version__,
        "torch_version": str(torch.__version__),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, *, expected_architecture: str | None = None) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; anything else is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file does not exist")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types on foreign files
        raise CheckpointError(
            f"{path}: not a stemwatch checkpoint (torch.load: {torch_load_reason(exc)}); "
            "give a .pt file written by `stemwatch train`"
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        kind = type(raw).__name__
        hint = " (a bare state dict?)" if isinstance(raw, dict) else ""
        raise CheckpointError(
            f"{path}: not a stemwatch checkpoint: a {kind}{hint} without format={FORMAT!r}; "
            "give a .pt file written by `stemwatch train`"
        )
    if raw.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format_version {raw.get('format_version')!r} is not "
            f"{FORMAT_VERSION}; use the stemwatch version that wrote it"
        )
    arch = raw["architecture"]
    if expected_architecture is not None and arch != expected_architecture:
        raise CheckpointError(
            f"{path}: checkpoint is of architecture {arch!r}, expected "
            f"{expected_architecture!r}; resume with architecture {arch!r} or start afresh"
        )
    try:
        return Checkpoint(
            path=path,
            architecture=arch,
            arch_kwargs=dict(raw["arch_kwargs"]),
            model_state=raw["model_state"],
            class_names=list(raw["class_names"]),
            positive_class=raw["positive_class"],
            tiling=TilingSpec.model_validate(raw["tiling"]),
            normalisation=NormalisationRecipe.model_validate(raw["normalisation"]),
            temperature=float(raw["temperature"]),
            training=raw.get("training") or {},
            metrics=raw.get("metrics") or {},
            epoch=int(raw.get("epoch", 0)),
            optimizer_state=raw.get("optimizer_state"),
            scheduler_state=raw.get("scheduler_state"),
            extra=raw.get("extra"),
            stemwatch_version=raw.get("stemwatch_version", ""),
            created=raw.get("created", ""),
            split=raw.get("split"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: damaged stemwatch checkpoint ({exc!r})") from None


def update_checkpoint(
    path: str | Path,
    out_path: str | Path | None = None,
    *,
    temperature: float | None = None,
    metrics: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> Path:
    """Rewrite a checkpoint with a new temperature / merged metrics / merged training summary
    (e.g. after calibration); writes ``out_path`` or in place."""
    ckpt = load_checkpoint(path)
    new = replace(
        ckpt,
        temperature=ckpt.temperature if temperature is None else temperature,
        metrics={**ckpt.metrics, **(metrics or {})},
        training={**ckpt.training, **(training or {})},
    )
    return save_checkpoint(
        out_path or path,
        model=new.build_model(),
        architecture=new.architecture,
        arch_kwargs=new.arch_kwargs,
        class_names=new.class_names,
        positive_class=new.positive_class,
        tiling=new.tiling,
        normalisation=new.normalisation,
        temperature=new.temperature,
        training=new.training,
        metrics=new.metrics,
        epoch=new.epoch,
        optimizer_state=new.optimizer_state,
        scheduler_state=new.scheduler_state,
        extra=new.extra,
        split=new.split,
    )
