"""Running a torch classifier on tiles: batched eval-mode logits, and a checkpoint's model.

Shared by training (validation, calibration, the test split) and evaluation of checkpoints.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer.checkpoint import load_checkpoint


def load_model_from_checkpoint(
    path: Path, *, expected_architecture: str | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint (CPU, eval mode) and return it with its metadata."""
    ck = load_checkpoint(path, expected_architecture=expected_architecture)
    info = {
        "architecture": ck.architecture,
        "class_names": list(ck.class_names),
        "positive_class": ck.positive_class,
        "tiling": ck.tiling.model_dump(mode="json"),
        "normalisation": ck.normalisation.model_dump(mode="json"),
        "temperature": float(ck.temperature),
        "checkpoint": ck,
    }
    return ck.build_model(), info


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    x: np.ndarray,
    *,
    batch_size: int = 128,
    device: torch.device | None = None,
    amp: bool = False,
) -> np.ndarray:
    """Logits of ``x`` (N,1,S,S) in eval mode, batched; float32 numpy (N, C)."""
    dev = device or torch.device("cpu")
    was_training = model.training
    model.eval()
    outs = []
    for i in range(0, len(x), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])).to(dev)
        with autocast(dev, amp):
            outs.append(model(xb).float().cpu().numpy())
    model.train(was_training)
    if not outs:
        return np.zeros((0, 2), dtype=np.float32)
    return np.concatenate(outs)


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[Any]:
    """float16 autocast on CUDA when mixed precision is on, else nothing."""
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()
