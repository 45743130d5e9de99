"""LeNet-5 (LeCun et al. 1998), the small baseline Kusumoto et al. 2018 compared with AlexNet.

Two 5x5 convolutions with 2x2 max pooling, then three fully connected layers (120, 84,
num_classes). The flattened size depends on the input side, so the network is built for one
``input_size`` (default 32, the classic; pass the tile size to train on larger tiles).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from trainer.architectures import register


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max pooling, for a fixed input side."""

    def __init__(self, num_classes: int = 2, in_channels: int = 1, input_size: int = 32) -> None:
        super().__init__()
        if input_size < 16:
            raise ValueError(f"lenet5 needs input_size >= 16, got {input_size}")
        self.input_size = input_size
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        side = ((input_size - 4) // 2 - 4) // 2
        self.classifier = nn.Sequential(
            nn.Linear(16 * side * side, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        if not torch.jit.is_tracing() and tuple(x.shape[-2:]) != (self.input_size,) * 2:
            raise ValueError(
                f"lenet5 was built for {self.input_size}x{self.input_size} inputs, "
                f"got {tuple(x.shape[-2:])}; create it with input_size={x.shape[-1]}"
            )
        return self.classifier(torch.flatten(self.features(x), 1))


@register(
    "lenet5",
    family="lenet",
    input_size=32,
    has_gap=False,
    description="LeNet-5 (Kusumoto et al. 2018 baseline); fixed input_size, no CAM.",
    first_conv="features.0",
    classifier="classifier.4",
)
def lenet5(*, num_classes: int = 2, in_channels: int = 1, **kwargs: Any) -> LeNet5:
    return LeNet5(num_classes=num_classes, in_channels=in_channels, **kwargs)
