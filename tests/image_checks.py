"""Helpers only tests use: a random crop (is an image still recognised when cropped?) and the
deconvnet projection of one activation (what the visualize tests check projections against)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.methods.deconv import forward_with_switches, project_down
from pipeline.models.vgg import VGGFeatures


def random_crop(pixels: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """A crop that drops `fraction` of each side's length (at a random offset), scaled back to the size."""
    h, w = pixels.shape[-2:]
    ch, cw = round(h * (1 - fraction)), round(w * (1 - fraction))
    top = int(torch.randint(0, h - ch + 1, (), generator=generator))
    left = int(torch.randint(0, w - cw + 1, (), generator=generator))
    crop = pixels[..., top:top + ch, left:left + cw]
    return F.interpolate(crop.float(), size=(h, w), mode="bilinear", align_corners=False, antialias=False)


def project_activation(net: VGGFeatures, x: torch.Tensor, layer: str, channel: int, y: int, x_pos: int,
                       value: float | None = None) -> torch.Tensor:
    """Projection (1,3,H,W) of the single activation (channel, y, x) of `layer` for input x (1,3,H,W)."""
    act, switches, sizes = forward_with_switches(net, x, layer)
    one = torch.zeros_like(act)
    one[0, channel, y, x_pos] = act[0, channel, y, x_pos] if value is None else value
    return project_down(net, layer, one, switches, sizes)
