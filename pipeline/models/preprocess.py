"""Pixel <-> network space for each backbone's convention.

Images travel through the project as float RGB tensors (B, 3, H, W) in 0..255.
Caffe/Keras VGG16 expects BGR, 0..255, minus the BGR mean; torchvision models
expect RGB scaled to 0..1 and normalised by mean/std.
"""

from __future__ import annotations

import torch

CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
TV_MEAN = (0.485, 0.456, 0.406)
TV_STD = (0.229, 0.224, 0.225)


class Preprocess:
    """to_net(pixels) and to_pixels(x) for one convention; exact inverses."""

    def __init__(self, kind: str):
        if kind not in ("caffe", "torchvision"):
            raise ValueError(f"unknown preprocessing {kind!r}")
        self.kind = kind

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "caffe":
            mean = torch.tensor(CAFFE_BGR_MEAN, dtype=like.dtype, device=like.device)
            return mean.view(1, 3, 1, 1), torch.ones(1, 3, 1, 1, dtype=like.dtype, device=like.device)
        mean = torch.tensor(TV_MEAN, dtype=like.dtype, device=like.device) * 255.0
        std = torch.tensor(TV_STD, dtype=like.dtype, device=like.device) * 255.0
        return mean.view(1, 3, 1, 1), std.view(1, 3, 1, 1)

    @property
    def unit(self) -> float:
        """Network-space size of one grey level (for step bounds given in grey levels)."""
        return 1.0 if self.kind == "caffe" else 1.0 / (255.0 * sum(TV_STD) / 3)

    def to_net(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.flip(1) if self.kind == "caffe" else pixels
        mean, std = self._stats(x)
        return (x - mean) / std

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(x)
        p = x * std + mean
        return p.flip(1) if self.kind == "caffe" else p

    def noise(self, shape, generator: torch.Generator) -> torch.Tensor:
        """Uniform 0..255 minus 128, in network space (the Keras notebook's noise init)."""
        u = torch.rand(shape, generator=generator) * 255.0 - 128.0
        if self.kind == "caffe":
            return u
        _, std = self._stats(u)
        return u / std
