"""Fixtures shared by the trainer tests (keep them generic; each test file owns its own data)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stemwatch.core.imaging import NormalisationRecipe, TilingSpec
from trainer.architectures import create
from trainer.checkpoint import save_checkpoint

CLASS_NAMES = ["undifferentiated", "differentiated"]
TINY_TILE = 64


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An UNTRAINED fastnet checkpoint (64-pixel tiles, downsample 2, temperature 1.5)."""
    torch.manual_seed(0)
    model = create("fastnet")
    path = tmp_path_factory.mktemp("ckpt") / "fastnet-untrained.pt"
    return save_checkpoint(
        path,
        model=model.eval(),
        architecture="fastnet",
        arch_kwargs={},
        class_names=CLASS_NAMES,
        positive_class="differentiated",
        tiling=TilingSpec(downsample=2, tile_size=TINY_TILE, max_tiles=8),
        normalisation=NormalisationRecipe(),
        temperature=1.5,
        training={"data_hash": "sha256:untrained", "epochs": 0},
        metrics={"val_auc": 0.5},
        epoch=0,
    )
