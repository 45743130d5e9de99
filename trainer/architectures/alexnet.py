"""AlexNet (Krizhevsky et al. 2012) with torchvision's parameter names (``features.N``,
``classifier.N``), as used by Kusumoto et al. 2018.

torchvision pools the last feature map to 6x6 with adaptive average pooling. That operator
exports to ONNX only when the map side is a multiple of 6, so here the same pooling is written
as two small matrix products, which are exact, work at any input side >= 63 and export
everywhere (the matrices are constants for the fixed export size).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from trainer.architectures.layers import StaticAdaptiveAvgPool2d
from trainer.architectures.registry import register


class AlexNet(nn.Module):
    """torchvision's AlexNet layout; ``dropout`` as there (0.5)."""

    def __init__(self, num_classes: int = 2, in_channels: int = 1, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = StaticAdaptiveAvgPool2d(6)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


@register(
    "alexnet",
    family="alexnet",
    input_size=224,
    has_gap=False,
    description="AlexNet (Kusumoto et al. 2018), torchvision names; ~57 M params, no CAM.",
    first_conv="features.0",
    classifier="classifier.6",
)
def alexnet(*, num_classes: int = 2, in_channels: int = 1, **kwargs: Any) -> AlexNet:
    return AlexNet(num_classes=num_classes, in_channels=in_channels, **kwargs)
