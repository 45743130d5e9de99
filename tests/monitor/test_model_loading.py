"""One onnxruntime session per daemon; models without the stemwatch metadata are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx_models import build_classifier, build_not_onnx, build_without_metadata, tiny_metadata

from monitor.inference import (
    CPU,
    CUDA,
    GpuUnavailableError,
    choose_providers,
    load_model,
)
from stemwatch.core.errors import ConfigError, ModelMetadataError
from stemwatch.core.modelfile import bundled_model_path, file_sha256


def test_loads_metadata_provider_and_hash(tiny_model_path: Path) -> None:
    m = load_model(tiny_model_path, device="cpu", intra_op_threads=1)
    assert m.provider == CPU
    assert m.metadata.positive_class == "differentiated"
    assert m.tile_size == 32 and m.metadata.tiling.downsample == 4
    assert m.model_hash == file_sha256(tiny_model_path) and len(m.model_hash) == 64


def test_predict_returns_the_positive_class_per_tile(tmp_path: Path) -> None:
    path = build_classifier(tmp_path / "bright.onnx", tile_size=32, brightness_gain=20.0)
    m = load_model(path)
    dark = np.zeros((3, 1, 32, 32), np.float32)
    bright = np.ones((2, 1, 32, 32), np.float32)
    p = m.predict(np.concatenate([dark, bright]))
    assert p.shape == (5,)
    assert (p[:3] < 0.01).all() and (p[3:] > 0.99).all()


def test_the_positive_class_index_comes_from_the_metadata(tmp_path: Path) -> None:
    meta = tiny_metadata(tile_size=32).model_copy(
        update={"class_names": ["differentiated", "undifferentiated"]}
    )
    path = build_classifier(tmp_path / "swapped.onnx", brightness_gain=20.0, metadata=meta)
    p = load_model(path).predict(np.ones((1, 1, 32, 32), np.float32))
    assert p[0] < 0.01  # column 0 is now "differentiated": the dark-class logit


def test_model_without_metadata_is_refused(tmp_path: Path) -> None:
    path = build_without_metadata(tmp_path / "bare.onnx")
    with pytest.raises(ModelMetadataError, match=r"bare\.onnx.*no 'stemwatch' metadata"):
        load_model(path)


def test_file_that_is_not_onnx_is_refused(tmp_path: Path) -> None:
    path = build_not_onnx(tmp_path / "junk.onnx")
    with pytest.raises(ModelMetadataError, match=r"junk\.onnx: not a loadable ONNX model"):
        load_model(path)


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.onnx: model file not found"):
        load_model(tmp_path / "nope.onnx")


def test_tile_size_mismatch_between_graph_and_metadata(tmp_path: Path) -> None:
    import onnx
    from onnx import helper

    from stemwatch.core.modelmeta import METADATA_KEY

    path = build_classifier(tmp_path / "m.onnx", tile_size=32)
    model = onnx.load(str(path))
    meta = json.loads(model.metadata_props[0].value)
    meta["tiling"]["tile_size"] = 48
    del model.metadata_props[:]
    helper.set_model_props(model, {METADATA_KEY: json.dumps(meta)})
    onnx.save(model, str(path))
    with pytest.raises(ModelMetadataError, match=r"needs \(N, 1, 48, 48\)"):
        load_model(path)


def test_require_gpu_fails_instead_of_falling_back(tiny_model_path: Path) -> None:
    import onnxruntime as ort

    if CUDA in ort.get_available_providers():
        pytest.skip("a CUDA provider is present here; the fallback cannot be exercised")
    with pytest.raises(GpuUnavailableError, match="--require-gpu"):
        load_model(tiny_model_path, require_gpu=True)


def test_choose_providers() -> None:
    assert choose_providers("auto", [CUDA, CPU]) == [CUDA, CPU]
    assert choose_providers("auto", [CPU]) == [CPU]
    assert choose_providers("cpu", [CUDA, CPU]) == [CPU]
    assert choose_providers("cuda", [CPU]) == [CPU]


def test_bundled_model_path_is_bundled_or_explains_how_to_get_one() -> None:
    try:
        path = bundled_model_path()
    except ConfigError as exc:
        assert "stemwatch export" in str(exc) and "--model" in str(exc)
    else:
        assert path.name == "stemwatch-default.onnx" and path.is_file()
