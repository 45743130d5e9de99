"""Batch augmentations for label-free microscopy, in torch, driven by an explicit generator.

Orientation carries no meaning in a well, so flips and 90-degree rotations are free; focus,
illumination and camera noise vary between acquisitions, hence brightness, contrast, gamma,
blur and noise. Inputs are normalised tiles in [0, 1]; outputs are clipped back to [0, 1].
"""

from __future__ import annotations

import torch

from trainer.config import AugmentSection


def _uniform(n: int, spread: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1).mul_(spread).to(device)


def augment_batch(x: torch.Tensor, cfg: AugmentSection, gen: torch.Generator) -> torch.Tensor:
    """Augment a batch (N, C, H, W) of square tiles; randomness comes only from ``gen`` (CPU)."""
    if not cfg.enabled or x.shape[0] == 0:
        return x
    n, dev = x.shape[0], x.device
    out = x
    if cfg.flips:
        flip_h = (torch.rand(n, generator=gen) < 0.5).to(dev)
        flip_v = (torch.rand(n, generator=gen) < 0.5).to(dev)
        out = torch.where(flip_h[:, None, None, None], out.flip(-1), out)
        out = torch.where(flip_v[:, None, None, None], out.flip(-2), out)
    if cfg.rot90 and out.shape[-1] == out.shape[-2]:
        k = torch.randint(0, 4, (n,), generator=gen).to(dev)
        rotated = out
        result = out.clone()
        for turns in range(1, 4):
            rotated = rotated.rot90(1, dims=(-2, -1))
            mask = (k == turns)[:, None, None, None]
            result = torch.where(mask, rotated, result)
        out = result
    if cfg.blur_prob > 0:
        blur = (torch.rand(n, generator=gen) < cfg.blur_prob).to(dev)
        kernel = torch.ones(out.shape[1], 1, 3, 3, device=dev, dtype=out.dtype) / 9.0
        padded = torch.nn.functional.pad(out, (1, 1, 1, 1), mode="reflect")
        blurred = torch.nn.functional.conv2d(padded, kernel, groups=out.shape[1])
        out = torch.where(blur[:, None, None, None], blurred, out)
    if cfg.gamma > 0:
        gamma = torch.exp(_uniform(n, cfg.gamma, gen, dev))
        out = out.clamp(min=0).pow(gamma)
    if cfg.contrast > 0:
        factor = 1 + _uniform(n, cfg.contrast, gen, dev)
        mean = out.mean(dim=(-2, -1), keepdim=True)
        out = (out - mean) * factor + mean
    if cfg.brightness > 0:
        out = out + _uniform(n, cfg.brightness, gen, dev)
    if cfg.noise_std > 0:
        std = torch.rand(n, 1, 1, 1, generator=gen).mul_(cfg.noise_std).to(dev)
        out = out + torch.randn(out.shape, generator=gen).to(dev) * std
    return out.clamp(0.0, 1.0)
