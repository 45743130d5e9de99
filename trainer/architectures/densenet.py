"""DenseNet-121 (Huang et al. 2017) with torchvision's parameter names
(``features.conv0``, ``features.denseblock1.denselayer1.norm1`` ..., ``classifier``)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.architectures.registry import register


class _DenseLayer(nn.Module):
    def __init__(self, in_ch: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_ch)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_ch, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(self.relu1(self.norm1(x)))
        return self.conv2(self.relu2(self.norm2(out)))


class _DenseBlock(nn.ModuleDict):
    def __init__(self, n_layers: int, in_ch: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        for i in range(n_layers):
            self.add_module(
                f"denselayer{i + 1}", _DenseLayer(in_ch + i * growth_rate, growth_rate, bn_size)
            )

    def forward(self, x: Tensor) -> Tensor:
        feats = [x]
        for layer in self.values():
            feats.append(layer(torch.cat(feats, 1)))
        return torch.cat(feats, 1)


class _Transition(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(in_ch))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(in_ch, out_ch, 1, bias=False))
        self.add_module("pool", nn.AvgPool2d(kernel_size=2, stride=2))


class DenseNet(nn.Module):
    """torchvision's DenseNet layout with global average pooling (supports CAM)."""

    def __init__(
        self,
        *,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        growth_rate: int = 32,
        num_init_features: int = 64,
        bn_size: int = 4,
        num_classes: int = 2,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module(
            "conv0", nn.Conv2d(in_channels, num_init_features, 7, 2, 3, bias=False)
        )
        self.features.add_module("norm0", nn.BatchNorm2d(num_init_features))
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        self.features.add_module("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        ch = num_init_features
        for i, n_layers in enumerate(block_config):
            self.features.add_module(
                f"denseblock{i + 1}", _DenseBlock(n_layers, ch, growth_rate, bn_size)
            )
            ch += n_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", _Transition(ch, ch // 2))
                ch //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(ch))
        self.classifier = nn.Linear(ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return F.relu(self.features(x))

    def forward_head(self, features: Tensor) -> Tensor:
        return self.classifier(features.mean(dim=(2, 3)))

    def classifier_layer(self) -> nn.Linear:
        return self.classifier

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register(
    "densenet121",
    family="densenet",
    input_size=224,
    has_gap=True,
    description="DenseNet-121, torchvision names; ~7 M params.",
    first_conv="features.conv0",
    classifier="classifier",
)
def densenet121(*, num_classes: int = 2, in_channels: int = 1, **kwargs: Any) -> DenseNet:
    return DenseNet(num_classes=num_classes, in_channels=in_channels, **kwargs)
