"""Registry of CNN architectures (timm-style): ``create("fastnet")``, ``list_architectures()``.

Every architecture takes ``(N, in_channels, S, S)`` float32 tiles and returns logits
``(N, num_classes)``. Parameter names of the AlexNet, ResNet and DenseNet families match
torchvision's state dicts, so a downloaded ImageNet ``.pth`` loads with
:func:`load_init_weights`. Architectures that end in global average pooling (``has_gap``)
implement :class:`CamModel`, from which the exporter computes a class activation map inside the
ONNX graph.

Add an architecture by decorating a builder in a family module with :func:`register` and
importing that module at the bottom of this file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from torch import Tensor, nn

from stemwatch.core.errors import StemwatchError

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


class ArchitectureError(StemwatchError):
    """An architecture that cannot be built as asked."""


class UnknownArchitectureError(ArchitectureError):
    """An architecture name that is not in the registry."""


class InitWeightsError(StemwatchError):
    """An initial-weights file that does not fit the architecture."""


@runtime_checkable
class CamModel(Protocol):
    """A network ending in global average pooling and one linear layer.

    ``forward(x) == forward_head(forward_features(x))`` and ``forward_head`` is global average
    pooling followed by ``classifier_layer()`` (dropout aside), so a class activation map is
    ``classifier_layer().weight @ forward_features(x)`` per pixel.
    """

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature map, (N, C, h, w), before pooling."""
        ...

    def forward_head(self, features: Tensor) -> Tensor:
        """Logits (N, num_classes) from the feature map."""
        ...

    def classifier_layer(self) -> nn.Linear:
        """The final linear layer (C -> num_classes)."""
        ...


Builder = Callable[..., nn.Module]
B = TypeVar("B", bound=Builder)


@dataclass(frozen=True)
class ArchitectureInfo:
    """What the registry knows about one architecture."""

    name: str
    family: str
    input_size: int
    """Default (and for fixed-head nets, native) input side in pixels."""
    has_gap: bool
    """Ends in global average pooling + linear: supports class activation maps."""
    description: str
    first_conv: str
    """State-dict prefix of the first convolution (adapted from RGB to grayscale)."""
    classifier: str
    """State-dict prefix of the final linear layer (skipped when class counts differ)."""
    builder: Builder


_REGISTRY: dict[str, ArchitectureInfo] = {}


def register(
    name: str,
    *,
    family: str,
    input_size: int,
    has_gap: bool,
    description: str,
    first_conv: str,
    classifier: str,
) -> Callable[[B], B]:
    """Decorator adding a builder ``(num_classes=, in_channels=, **kwargs) -> nn.Module``."""

    def deco(builder: B) -> B:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} is registered twice")
        _REGISTRY[name] = ArchitectureInfo(
            name, family, input_size, has_gap, description, first_conv, classifier, builder
        )
        return builder

    return deco


def list_architectures() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(_REGISTRY)


def get_info(name: str) -> ArchitectureInfo:
    """The registry entry for ``name``; unknown names raise a clear error."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownArchitectureError(
            f"unknown architecture {name!r}; choose one of {', '.join(list_architectures())}"
        ) from None


def create(name: str, *, num_classes: int = 2, in_channels: int = 1, **kwargs: Any) -> nn.Module:
    """Build architecture ``name`` with freshly initialised weights."""
    info = get_info(name)
    if num_classes < 1 or in_channels < 1:
        raise ArchitectureError(
            f"{name}: num_classes ({num_classes}) and in_channels ({in_channels}) must be >= 1"
        )
    try:
        return info.builder(num_classes=num_classes, in_channels=in_channels, **kwargs)
    except TypeError as exc:
        if "keyword argument" not in str(exc):
            raise
        raise ArchitectureError(
            f"{name}: unsupported architecture arguments {kwargs} ({exc}); "
            "check model.kwargs in the trainer config"
        ) from None


# Family modules register themselves; imported last so the registry above exists.
from trainer.architectures import (  # noqa: E402
    alexnet,  # noqa: F401
    densenet,  # noqa: F401
    fastnet,  # noqa: F401
    lenet,  # noqa: F401
    resnet,  # noqa: F401
)
from trainer.architectures.weights import load_init_weights  # noqa: E402
