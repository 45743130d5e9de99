"""The benchmark's stand-in model has the registry's FastNet layout and the model contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monitor.inference import load_model
from stemwatch.evaluation.monitor_bench import build_standin_model
from trainer.architectures.fastnet import FASTNET_BLOCKS


def test_standin_follows_the_registry_layout(tmp_path: Path) -> None:
    path = build_standin_model(tmp_path / "standin.onnx", tile_size=64, width=0.25)
    model = load_model(path)
    p, cam = model.predict_with_cam(np.random.default_rng(0).random((2, 1, 64, 64), np.float32))
    assert p.shape == (2,) and ((p >= 0) & (p <= 1)).all()
    stride = 2 * np.prod([s for _, s in FASTNET_BLOCKS])  # stem and the strided blocks
    assert cam is not None and cam.shape == (2, 64 // stride, 64 // stride)
