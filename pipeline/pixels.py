"""Pictures in memory: sizes, resizing and the PIL <-> tensor conversions (no files).

The ground floor both io/ (which decodes and encodes files) and methods/ (which know no files) use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch


def target_size(width: int, height: int, size: int, upscale: bool = False, multiple: int = 1) -> tuple[int, int]:
    """(W, H) with the longest side `size`, never enlarging unless asked; snapped to `multiple`."""
    longest = max(width, height)
    scale = size / longest
    if scale > 1 and not upscale:
        scale = 1.0
    w = max(1, round(width * scale))
    h = max(1, round(height * scale))
    if multiple > 1:
        w = max(multiple, round(w / multiple) * multiple)
        h = max(multiple, round(h / multiple) * multiple)
    return w, h


def resize(img: Image.Image, wh: tuple[int, int]) -> Image.Image:
    if img.size == tuple(wh):
        return img
    return img.resize(wh, Image.Resampling.LANCZOS)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> float tensor (1, 3, H, W) in 0..255."""
    import torch

    arr = np.asarray(img, dtype=np.float32)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0)


def to_pil(pixels: torch.Tensor) -> Image.Image:
    """Float tensor (3, H, W) or (1, 3, H, W) in 0..255 -> PIL RGB (rounded, clipped)."""
    if pixels.dim() == 4:
        pixels = pixels[0]
    arr = pixels.detach().float().cpu().clamp(0, 255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(arr, "RGB")
