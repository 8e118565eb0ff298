"""Texture synthesis (Gatys, Ecker, Bethge 2015): noise → Gram statistics of a source.

Only the style (Gram) loss is minimised, optionally with TV; there is no
content. The output size is free: the source's Gram matrices are rescaled per
layer pixel so a 256-px source can drive a 512×384 texture.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

import numpy as np
import torch
from PIL import Image

from pipeline.config import Pooling, StyleConfig
from pipeline.engine.loop import RenderOptions, RenderResult, logging_step, render
from pipeline.engine.objectives import Style, Sum, TotalVariation
from pipeline.engine.precision import resolve_precision
from pipeline.models.vgg import Backbone
from pipeline.schema import Int, Layers, NonNegative, PositiveInt, Weights
from pipeline.methods.stylize import StyleTargets

Side = Int(ge=16)  # an output side in pixels


@dataclass
class TextureConfig(StyleConfig):
    """StyleConfig plus the texture's own size and colour matching.

    `size` is the longest side of the source when its statistics are taken;
    `width`/`height` are the output's (default: size × size).
    """

    preset: ClassVar[str] = "texture"

    pooling: Pooling = "avg"
    style_layers: Layers = field(default_factory=lambda: [
        "block1_conv1", "block1_pool", "block2_pool", "block3_pool", "block4_pool"])
    style_weights: Union[NonNegative, Weights] = field(default_factory=lambda: [1.0] * 5)
    content_weight: NonNegative = 0.0
    tv_weight: NonNegative = 0.0
    width: Optional[Side] = None
    height: Optional[Side] = None
    match_histogram: bool = False
    count: PositiveInt = 1

    def output_wh(self) -> tuple[int, int]:
        return (self.width or self.size, self.height or self.size)


def texture_targets(backbone: Backbone, cfg: TextureConfig, name: str, source: Image.Image,
                    targets: StyleTargets | None = None) -> dict[str, torch.Tensor]:
    """Gram targets of `source` (longest side cfg.size), scaled to the output's layer sizes."""
    out_w, out_h = cfg.output_wh()
    # style_scale makes StyleTargets size the source by its own aspect: longest = scale·max(out)
    base = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(StyleConfig)}
    scaled = StyleConfig(**{**base, "style_scale": cfg.size / max(out_w, out_h)})
    targets = targets or StyleTargets(backbone, scaled)
    targets.cfg = scaled
    return targets.get([(name, source)], None, (out_w, out_h))


def texture_objective(cfg: TextureConfig, grams: dict[str, torch.Tensor]):
    """Σ_l w_l/L · Style_l (+ tv_weight · TV)."""
    n = len(cfg.style_layers)
    terms = [(w / n) * Style(layer, grams[layer]) for layer, w in zip(cfg.style_layers, cfg.style_weights) if w]
    if cfg.tv_weight > 0:
        terms.append(cfg.tv_weight * TotalVariation())
    return Sum(terms)


def match_histogram(pixels: torch.Tensor, source: Image.Image) -> torch.Tensor:
    """Per channel, map the result's value ranks onto the source's value distribution."""
    src = np.asarray(source, dtype=np.float32).reshape(-1, 3)
    out = pixels.detach().cpu().float().clone()
    for b in range(out.shape[0]):
        for c in range(3):
            v = out[b, c].flatten().numpy()
            order = np.argsort(v, kind="stable")
            quantiles = (np.arange(v.size) + 0.5) / v.size
            matched = np.empty_like(v)
            matched[order] = np.quantile(src[:, c], quantiles)
            out[b, c] = torch.from_numpy(matched).view(out.shape[-2:])
    return out.to(pixels.device)


def synthesize(backbone: Backbone, cfg: TextureConfig, name: str, source: Image.Image, seed: int,
               targets: StyleTargets | None = None, on_log=None) -> tuple[torch.Tensor, RenderResult]:
    """One texture from `source` and noise seeded by `seed`; pixels (1,3,H,W) 0..255 and the result."""
    dev = backbone.device
    grams = texture_targets(backbone, cfg, name, source, targets)
    objective = texture_objective(cfg, grams)
    out_w, out_h = cfg.output_wh()
    x0 = backbone.pre.noise((1, 3, out_h, out_w), torch.Generator().manual_seed(int(seed))).to(dev)
    options = RenderOptions(cfg.iterations, optimizer=cfg.optimizer, lr=cfg.learning_rate, history=cfg.lbfgs_history,
                            precision=resolve_precision(cfg.precision, dev), log_every=cfg.log_every,
                            compile=cfg.compile)
    result = render(backbone.net, objective, x0, options, logging_step(on_log))
    pixels = backbone.pre.to_pixels(result.x).clamp(0, 255)
    if cfg.match_histogram:
        pixels = match_histogram(pixels, source)
    return pixels, result
