"""Initialising an architecture from a downloaded torchvision-style ``.pth`` file.

The user downloads ImageNet weights themselves (nothing here reaches the network). Keys are
matched by name; the first convolution is adapted from RGB to the model's channel count and the
classifier is left freshly initialised when its class count differs. Anything else that does not
match is an error naming the file and the keys, because silently loading half a network trains
a worse model without anyone noticing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from trainer.architectures.registry import InitWeightsError

log = logging.getLogger(__name__)

# torchvision's DenseNet files use 'denselayer1.norm.1.weight' for 'denselayer1.norm1.weight'.
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)
_WRAPPER_KEYS = ("model_state", "state_dict", "model")
_SHOW = 6


@dataclass
class InitWeightsReport:
    """What :func:`load_init_weights` did."""

    path: Path
    loaded: int = 0
    adapted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _examples(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOW])
    return shown + (f" (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else "")


def torch_load_reason(exc: BaseException) -> str:
    """The informative line of a torch.load error (its weights-only message is long)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if "Unsupported global" in ln or "WeightsUnpickler" in ln:
            return ln.split(". Please use")[0]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """Tensors of a ``.pth`` state dict (also inside a ``{'state_dict': ...}`` wrapper)."""
    if not path.is_file():
        raise InitWeightsError(f"{path}: initial-weights file does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types on foreign files
        raise InitWeightsError(
            f"{path}: not a PyTorch state dict ({torch_load_reason(exc)}); "
            "give a torchvision-style .pth file of weights"
        ) from None
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise InitWeightsError(
            f"{path}: holds a {type(obj).__name__}, not a mapping of parameter names to "
            "tensors; give a torchvision-style .pth file of weights"
        )
    state: dict[str, Tensor] = {}
    for key, value in obj.items():
        name = str(key).removeprefix("module.")
        m = _OLD_DENSENET_KEY.match(name)
        state[m.group(1) + m.group(2) if m else name] = value
    return state


def adapt_first_conv(weight: Tensor, in_channels: int) -> Tensor:
    """RGB (O, 3, k, k) kernel -> ``in_channels``: summed for grayscale (a gray image is R=G=B),
    otherwise the RGB mean repeated and scaled to keep the activation scale."""
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    mean = weight.mean(dim=1, keepdim=True)
    return mean.repeat(1, in_channels, 1, 1) * (weight.shape[1] / in_channels)


def _first_conv_key(state: Mapping[str, Tensor]) -> str:
    return next(k for k, v in state.items() if k.endswith("weight") and v.ndim == 4)


def _head_prefix(model: nn.Module) -> str:
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)][-1]


def load_init_weights(model: nn.Module, path: str | Path, *, in_channels: int) -> InitWeightsReport:
    """Load a torchvision-style state dict from ``path`` into ``model`` (in place)."""
    path = Path(path)
    state = read_state_dict(path)
    own = model.state_dict()
    first = _first_conv_key(own)
    if own[first].shape[1] != in_channels:
        raise InitWeightsError(
            f"{path}: in_channels={in_channels} but the model's first convolution {first!r} "
            f"takes {own[first].shape[1]}; create the model with in_channels={in_channels}"
        )
    head = _head_prefix(model)
    model_name = type(model).__name__
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise InitWeightsError(
            f"{path}: its keys do not match {model_name} (a file for another architecture?): "
            f"{len(missing)} model keys absent from the file [{_examples(missing)}]; "
            f"{len(unexpected)} file keys the model lacks [{_examples(unexpected)}]. "
            "Use the weights file made for this architecture (resnet18 weights for resnet18)"
        )
    report = InitWeightsReport(path)
    new: dict[str, Tensor] = {}
    bad_shapes: list[str] = []
    for key, mine in own.items():
        if key not in state:
            continue
        theirs = state[key]
        if key == first and theirs.shape != mine.shape and theirs.shape[2:] == mine.shape[2:]:
            theirs = adapt_first_conv(theirs, in_channels)
            report.adapted.append(key)
        elif key.startswith(head + ".") and theirs.shape != mine.shape:
            report.skipped.append(key)
            continue
        if theirs.shape != mine.shape:
            bad_shapes.append(f"{key} file {tuple(theirs.shape)} vs model {tuple(mine.shape)}")
            continue
        new[key] = theirs.to(mine.dtype)
    if bad_shapes:
        raise InitWeightsError(
            f"{path}: tensor shapes do not match {model_name}: {_examples(bad_shapes)}; "
            "use the weights file of the same architecture and width"
        )
    model.load_state_dict(new, strict=False)
    report.loaded = len(new)
    log.info(
        "initial weights from %s: %d tensors loaded, first conv adapted %s, classifier %s",
        path,
        report.loaded,
        report.adapted or "no",
        f"re-initialised ({', '.join(report.skipped)})" if report.skipped else "loaded",
    )
    return report
