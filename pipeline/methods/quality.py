"""Measures of an imagined image that tests and run records share: is it an image, not noise?

- `spectrum_slope`: the slope of log power against log frequency of the grey image's
  radially averaged spectrum. Photographs sit near -2 (Field 1987; -2.2 to -3.0 for the
  photos and paintings measured here), white noise at 0.
- `target_probability`: the classifier's probability of the target class on the image (the
  tests also ask it of random crops scaled back up: a pattern that only works pixel-exact
  fails there).
"""

from __future__ import annotations

import torch


def spectrum_slope(pixels: torch.Tensor) -> float:
    """Fitted slope of log radial power vs log frequency; pixels (3, H, W) or (1, 3, H, W), any scale."""
    x = pixels.float().reshape(-1, *pixels.shape[-3:])[0].mean(0)  # grey (H, W)
    x = x - x.mean()
    h, w = x.shape
    power = torch.fft.fftshift(torch.fft.fft2(x)).abs().pow(2)
    yy, xx = torch.meshgrid(torch.arange(h) - h // 2, torch.arange(w) - w // 2, indexing="ij")
    radius = torch.sqrt(yy.float() ** 2 + xx.float() ** 2).round().long()
    top = min(h, w) // 2
    sums = torch.zeros(int(radius.max()) + 1).index_add_(0, radius.flatten(), power.flatten())
    counts = torch.zeros_like(sums).index_add_(0, radius.flatten(), torch.ones(h * w))
    r = torch.arange(1, top, dtype=torch.float64)
    radial = (sums[1:top] / counts[1:top]).double().clamp_min(1e-20)
    lx, ly = r.log(), radial.log()
    lx_c = lx - lx.mean()
    return float((lx_c * (ly - ly.mean())).sum() / (lx_c * lx_c).sum())


def target_probability(classifier, pixels: torch.Tensor, target: int) -> float:
    """p(target) of the first image in pixels (B, 3, H, W, 0..255)."""
    from pipeline.models.classes import probabilities

    return float(probabilities(classifier.net, classifier.pre, pixels[:1])[0, target])
