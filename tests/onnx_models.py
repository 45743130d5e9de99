"""Tiny real ONNX classifiers for tests, built with ``onnx.helper`` (no torch).

``build_classifier(path)`` writes a model with the stemwatch contract: input ``image``
(N, 1, S, S) float32, output ``probabilities`` (N, 2) (softmax inside the graph), and the
``stemwatch`` ModelMetadata JSON in ``metadata_props``. The graph is a 3x3 convolution, ReLU,
global average pooling, a linear layer and softmax. With ``brightness_gain`` the differentiated
probability rises with the tile's mean intensity, so tests can steer predictions with pixels.

Other helpers write models the monitor must refuse: one without metadata, and a file that is
not ONNX at all. Imported by the monitor, monitor-store and dashboard tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from stemwatch.core.imaging import NormalisationRecipe, TilingSpec
from stemwatch.core.modelmeta import METADATA_KEY, ModelMetadata

CLASS_NAMES = ["undifferentiated", "differentiated"]


def tiny_metadata(
    *, tile_size: int = 64, downsample: int = 4, max_tiles: int = 16, **extra: Any
) -> ModelMetadata:
    """ModelMetadata for a test model with the given tiling."""
    fields: dict[str, Any] = {
        "name": "test-tiny-cnn",
        "architecture": "tiny-test-cnn",
        "class_names": CLASS_NAMES,
        "positive_class": "differentiated",
        "tiling": TilingSpec(
            downsample=downsample, tile_size=tile_size, max_tiles=max_tiles, min_foreground_std=0.0
        ),
        "normalisation": NormalisationRecipe(),
        "stemwatch_version": "test",
        "created": "2026-01-01T00:00:00Z",
    }
    fields.update(extra)
    return ModelMetadata(**fields)


def classifier_graph(
    *,
    tile_size: int,
    channels: int = 4,
    brightness_gain: float = 0.0,
    seed: int = 0,
    cam: bool = False,
) -> onnx.ModelProto:
    """The ONNX model proto (no metadata): conv -> relu -> GAP -> gemm -> softmax.

    With ``cam`` it also outputs ``cam`` (N, S, S): the positive-minus-negative class weights
    applied to the features at each pixel, as the trainer's exporter does.
    """
    rng = np.random.default_rng(seed)
    conv_w = rng.normal(0, 0.5, size=(channels, 1, 3, 3)).astype(np.float32)
    conv_b = np.zeros(channels, dtype=np.float32)
    fc_w = rng.normal(0, 0.5, size=(2, channels)).astype(np.float32)
    fc_b = np.zeros(2, dtype=np.float32)
    # brightness path: logits += gain * (mean(x) - 0.5) * [-1, +1]
    br_w = np.array([[-brightness_gain], [brightness_gain]], dtype=np.float32)
    br_b = np.array([0.5 * brightness_gain, -0.5 * brightness_gain], dtype=np.float32)
    inits = [
        numpy_helper.from_array(conv_w, "conv_w"),
        numpy_helper.from_array(conv_b, "conv_b"),
        numpy_helper.from_array(fc_w, "fc_w"),
        numpy_helper.from_array(fc_b, "fc_b"),
        numpy_helper.from_array(br_w, "br_w"),
        numpy_helper.from_array(br_b, "br_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("GlobalAveragePool", ["r1"], ["g1"]),
        helper.make_node("Flatten", ["g1"], ["f1"], axis=1),
        helper.make_node("Gemm", ["f1", "fc_w", "fc_b"], ["l1"], transB=1),
        helper.make_node("GlobalAveragePool", ["image"], ["gm"]),
        helper.make_node("Flatten", ["gm"], ["fm"], axis=1),
        helper.make_node("Gemm", ["fm", "br_w", "br_b"], ["l2"], transB=1),
        helper.make_node("Add", ["l1", "l2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    outputs = [
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2]),
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2]),
    ]
    if cam:
        cam_w = (fc_w[1] - fc_w[0]).reshape(1, channels, 1, 1).astype(np.float32)
        inits.append(numpy_helper.from_array(cam_w, "cam_w"))
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "cam_axis"))
        nodes.append(helper.make_node("Conv", ["r1", "cam_w"], ["cam4"]))
        nodes.append(helper.make_node("Squeeze", ["cam4", "cam_axis"], ["cam"]))
        outputs.append(
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", tile_size, tile_size])
        )
    graph = helper.make_graph(
        nodes,
        "stemwatch_test_classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, tile_size, tile_size])],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_classifier(
    path: str | Path,
    *,
    tile_size: int = 64,
    downsample: int = 4,
    max_tiles: int = 16,
    brightness_gain: float = 0.0,
    channels: int = 4,
    seed: int = 0,
    cam: bool = False,
    metadata: ModelMetadata | None = None,
) -> Path:
    """Write a tiny stemwatch-compatible ONNX classifier to ``path`` and return it.

    ``cam=True`` adds a ``cam`` output and names it in the metadata (``cam_output_name``).
    """
    meta = metadata or tiny_metadata(
        tile_size=tile_size,
        downsample=downsample,
        max_tiles=max_tiles,
        cam_output_name="cam" if cam else None,
    )
    model = classifier_graph(
        tile_size=meta.tiling.tile_size,
        channels=channels,
        brightness_gain=brightness_gain,
        seed=seed,
        cam=cam,
    )
    helper.set_model_props(model, {METADATA_KEY: meta.to_json()})
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(p))
    return p


def build_without_metadata(path: str | Path, *, tile_size: int = 64) -> Path:
    """A valid ONNX classifier that lacks the stemwatch metadata (must be refused)."""
    p = Path(path)
    onnx.save(classifier_graph(tile_size=tile_size), str(p))
    return p


def build_not_onnx(path: str | Path) -> Path:
    """A file named .onnx that is not ONNX (must be refused)."""
    p = Path(path)
    p.write_bytes(b"this is not an onnx model\n" * 10)
    return p
