"""Registry of CNN architectures (timm-style): ``create("fastnet")``, ``list_architectures()``.

Every architecture takes ``(N, in_channels, S, S)`` float32 tiles and returns logits
``(N, num_classes)``. Parameter names of the AlexNet, ResNet and DenseNet families match
torchvision's state dicts, so a downloaded ImageNet ``.pth`` loads with
:func:`load_init_weights`. Architectures that end in global average pooling (``has_gap``)
implement :class:`CamModel`, from which the exporter computes a class activation map inside the
ONNX graph.

Add an architecture by decorating a builder in a family module with
:func:`~trainer.architectures.registry.register` and importing that module below.
"""

from __future__ import annotations

# Family modules register themselves with the registry when imported.
from trainer.architectures import alexnet, densenet, fastnet, lenet, resnet  # noqa: F401
from trainer.architectures.registry import (
    ArchitectureError,
    ArchitectureInfo,
    CamModel,
    InitWeightsError,
    UnknownArchitectureError,
    create,
    get_info,
    list_architectures,
    register,
)
from trainer.architectures.weights import load_init_weights

__all__ = [
    "ArchitectureError",
    "ArchitectureInfo",
    "CamModel",
    "InitWeightsError",
    "UnknownArchitectureError",
    "create",
    "get_info",
    "list_architectures",
    "load_init_weights",
    "register",
]
