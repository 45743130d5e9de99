"""Layers shared by several architectures."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def adaptive_pool_matrix(n_in: int, n_out: int, *, dtype: torch.dtype) -> Tensor:
    """(n_out, n_in) averaging matrix with PyTorch's adaptive pooling bins."""
    m = torch.zeros(n_out, n_in, dtype=dtype)
    for i in range(n_out):
        start = (i * n_in) // n_out
        end = -((-(i + 1) * n_in) // n_out)  # ceil
        m[i, start:end] = 1.0 / (end - start)
    return m


class StaticAdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d(size)`` as matrix products (exports at any fixed input size)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if (h, w) == (self.size, self.size):
            return x
        rows = adaptive_pool_matrix(h, self.size, dtype=x.dtype).to(x.device)
        cols = adaptive_pool_matrix(w, self.size, dtype=x.dtype).to(x.device)
        return rows @ x @ cols.T
