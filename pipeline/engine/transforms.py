"""Transformation robustness: random pad, jitter, scale, rotate (and blur) before every evaluation.

An image optimised to excite a network through one fixed view becomes an
adversarial pattern; one that must keep exciting it under small random shifts,
zooms and turns has to show the feature at every position and scale, which is
what makes it look like something (Olah et al. 2017; Mordvintsev et al. 2015).
All draws come from the caller's generator, so a sample's result depends on its
seed only. Every step is differentiable: the gradient flows back to the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Robustness:
    """The random view, as settings (0 / 1.0 turns a step off)."""

    pad: int = 12               # constant border (grey 0.5) so jitter and rotation do not wrap
    jitter: int = 8             # random crop offset in pixels, before and after scale/rotate
    scale: float = 0.1          # zoom drawn uniformly in [1 - scale, 1 + scale]
    rotate: float = 10.0        # angle drawn uniformly in [-rotate, rotate] degrees
    blur: float = 0.0           # Gaussian sigma in pixels, drawn uniformly in [0, blur]

    def active(self) -> bool:
        return bool(self.pad or self.jitter or self.scale or self.rotate or self.blur)


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen))


def jitter(x: torch.Tensor, d: int, gen: torch.Generator) -> torch.Tensor:
    """A random crop that removes up to d pixels in total from each side pair."""
    if d <= 0 or min(x.shape[-2:]) <= d:
        return x
    dy, dx = (int(v) for v in torch.randint(0, d + 1, (2,), generator=gen))
    h, w = x.shape[-2:]
    return x[..., dy:h - d + dy, dx:w - d + dx]


def scale_rotate(x: torch.Tensor, scale: float, degrees: float) -> torch.Tensor:
    """Zoom by `scale` and turn by `degrees` about the centre, keeping the size (bilinear,
    borders filled by reflection of the padded edge)."""
    if scale == 1.0 and degrees == 0.0:
        return x
    a = math.radians(degrees)
    c, s = math.cos(a) / scale, math.sin(a) / scale
    theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur, radius 2σ, reflecting borders."""
    if sigma <= 0.05:
        return x
    r = max(1, int(math.ceil(2 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def random_view(x: torch.Tensor, r: Robustness, gen: torch.Generator) -> torch.Tensor:
    """One random view of images x (B, 3, H, W, 0..1): pad, jitter, scale+rotate, jitter, blur.
    The whole batch shares the draw (one view per evaluation)."""
    if r.pad:
        x = F.pad(x, (r.pad,) * 4, mode="constant", value=0.5)
    x = jitter(x, r.jitter, gen)
    zoom = _uniform(gen, 1 - r.scale, 1 + r.scale) if r.scale else 1.0
    angle = _uniform(gen, -r.rotate, r.rotate) if r.rotate else 0.0
    x = scale_rotate(x, zoom, angle)
    x = jitter(x, r.jitter // 2, gen)
    if r.blur:
        x = gaussian_blur(x, _uniform(gen, 0.0, r.blur))
    return x
