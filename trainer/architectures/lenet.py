"""LeNet-5 (LeCun et al. 1998), the small baseline Kusumoto et al. 2018 compared with AlexNet.

Two 5x5 convolutions with 2x2 max pooling, then three fully connected layers (120, 84,
num_classes). At the classic 32x32 input the last feature map is 5x5; at other sizes it is
average-pooled to 5x5 (as torchvision's AlexNet pools to 6x6), so any tile side >= 16 works.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from trainer.architectures.layers import StaticAdaptiveAvgPool2d
from trainer.architectures.registry import register


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max pooling."""

    def __init__(self, num_classes: int = 2, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.avgpool = StaticAdaptiveAvgPool2d(5)
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


@register(
    "lenet5",
    family="lenet",
    input_size=32,
    has_gap=False,
    description="LeNet-5 (Kusumoto et al. 2018 baseline); ~61 k params, no CAM.",
    first_conv="features.0",
    classifier="classifier.4",
)
def lenet5(*, num_classes: int = 2, in_channels: int = 1, **kwargs: Any) -> LeNet5:
    return LeNet5(num_classes=num_classes, in_channels=in_channels, **kwargs)
