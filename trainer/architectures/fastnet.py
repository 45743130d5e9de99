"""FastNet: the default, a small depthwise-separable CNN for CPU inference beside a microscope.

MobileNet-style: a strided 3x3 stem, then blocks of depthwise 3x3 + pointwise 1x1 convolutions
with batch norm and ReLU (identity shortcut where shape allows), global average pooling and one
linear layer. About 0.14 M parameters and ~25 M multiply-adds per 128x128 tile.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from trainer.architectures.registry import register

# (out_channels, stride) of each depthwise-separable block after the stem.
FASTNET_BLOCKS: tuple[tuple[int, int], ...] = (
    (32, 1),
    (64, 2),
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
)


class SeparableBlock(nn.Module):
    """Depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN (+ shortcut) -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(in_ch, in_ch, 3, stride, 1, groups=in_ch, bias=False)
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.pw = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.dw(x)))
        out = self.bn2(self.pw(out))
        if self.residual:
            out = out + x
        return self.relu(out)


class FastNet(nn.Module):
    """Small separable CNN with global average pooling (supports CAM)."""

    def __init__(
        self,
        num_classes: int = 2,
        in_channels: int = 1,
        stem_channels: int = 24,
        width: float = 1.0,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, stem_channels, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.relu = nn.ReLU(inplace=True)
        blocks: list[nn.Module] = []
        ch = stem_channels
        for out_ch, stride in FASTNET_BLOCKS:
            out = max(8, round(out_ch * width))
            blocks.append(SeparableBlock(ch, out, stride))
            ch = out
        self.blocks = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.blocks(self.relu(self.bn1(self.conv1(x))))

    def forward_head(self, features: Tensor) -> Tensor:
        return self.fc(self.dropout(self.avgpool(features).flatten(1)))

    def classifier_layer(self) -> nn.Linear:
        return self.fc

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register(
    "fastnet",
    family="fastnet",
    input_size=128,
    has_gap=True,
    description="Default: small depthwise-separable CNN (~0.14 M params) for fast CPU inference.",
    first_conv="conv1",
    classifier="fc",
)
def fastnet(*, num_classes: int = 2, in_channels: int = 1, **kwargs: Any) -> FastNet:
    return FastNet(num_classes=num_classes, in_channels=in_channels, **kwargs)


@register(
    "fastnet_s",
    family="fastnet",
    input_size=128,
    has_gap=True,
    description="Trainer default: FastNet at half width (~38 k params), ~2.4x cheaper to train "
    "on CPU; fits the README's example run in 10 minutes on 2 cores.",
    first_conv="conv1",
    classifier="fc",
)
def fastnet_s(*, num_classes: int = 2, in_channels: int = 1, **kwargs: Any) -> FastNet:
    kwargs.setdefault("width", 0.5)
    return FastNet(num_classes=num_classes, in_channels=in_channels, **kwargs)
