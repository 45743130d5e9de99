"""The registry behind :mod:`trainer.architectures`: ``register`` decorates a builder in a family
module; ``create``, ``get_info`` and ``list_architectures`` look it up. Family modules import
this module, never the package, so the package can import them without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from torch import Tensor, nn

from stemwatch.core.errors import StemwatchError


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
