"""Fixtures of the monitor tests: one tiny real ONNX model and a loaded session for all."""

from __future__ import annotations

from pathlib import Path

import pytest
from onnx_models import build_classifier

from monitor.inference import LoadedModel, load_model


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-px-tile classifier (downsample x4): a 256² image gives 4 tiles."""
    return build_classifier(
        tmp_path_factory.mktemp("models") / "tiny.onnx", tile_size=32, downsample=4
    )


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path: Path) -> LoadedModel:
    """One onnxruntime session shared by the daemons of all tests (sessions are thread-safe)."""
    return load_model(tiny_model_path)
