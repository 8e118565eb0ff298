"""Image reconstruction from one layer's representation (Mahendran & Vedaldi 2014).

For each chosen layer l, starting from noise, minimise
  ‖Φ_l(x) − Φ_l(x0)‖² / ‖Φ_l(x0)‖²  +  λ_α·R_α(x)  +  λ_TV·R_TV^β(x)
with the normalised priors of `AlphaNorm` and `TotalVariationBeta`. Shallow
layers give back the photo; deeper ones keep the layout and lose the detail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from pipeline.config import StyleConfig
from pipeline.engine.loop import RenderOptions, RenderResult, logging_step, render
from pipeline.engine.objectives import AlphaNorm, RelativeFeature, Sum, TotalVariationBeta
from pipeline.engine.precision import autocast, resolve_precision
from pipeline.errors import BadInput
from pipeline.models.layers import canonical_layer, layer_index
from pipeline.models.vgg import Backbone
from pipeline.schema import Layers, NonNegative, Positive


@dataclass
class InvertConfig(StyleConfig):
    """StyleConfig plus the layers to invert and the two priors' settings.

    tv_weight here weighs TV^β, normalised by H·W·(bound/6.5)^β; alpha_weight
    weighs Σ|x/bound|^α / (H·W) (x in network space).
    """

    preset: ClassVar[str] = "invert"

    invert_layers: Layers = field(default_factory=lambda: [
        "block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"])
    alpha: Positive = 6.0
    alpha_weight: NonNegative = 1e-3
    beta: Positive = 2.0
    tv_weight: NonNegative = 5e-3
    bound: Positive = 128.0
    content_weight: NonNegative = 0.0

    def validate(self) -> "InvertConfig":
        super().validate()
        if not self.invert_layers:
            raise BadInput("invert_layers must name at least one layer")
        arch = "vgg19" if self.network == "vgg19" else "vgg16"
        layers = [canonical_layer(s, arch) for s in self.invert_layers]
        self.invert_layers = sorted(dict.fromkeys(layers), key=lambda n: layer_index(n, arch))
        return self


def invert_objective(cfg: InvertConfig, layer: str, target: torch.Tensor):
    terms = [RelativeFeature(layer, target)]
    if cfg.alpha_weight > 0:
        terms.append(cfg.alpha_weight * AlphaNorm(cfg.alpha, cfg.bound))
    if cfg.tv_weight > 0:
        terms.append(cfg.tv_weight * TotalVariationBeta(cfg.beta, cfg.bound / 6.5))
    return Sum(terms)


def reconstruct(backbone: Backbone, cfg: InvertConfig, pixels: torch.Tensor, layer: str, seed: int,
                on_log=None) -> tuple[torch.Tensor, RenderResult]:
    """Reconstruct `pixels` (1,3,H,W, 0..255) from `layer`; returns pixels and the render result."""
    dev = backbone.device
    precision = resolve_precision(cfg.precision, dev)
    x_net = backbone.pre.to_net(pixels.to(dev))
    with torch.no_grad(), autocast(precision, dev):
        target = backbone.net(x_net, [layer])[layer].float()
    objective = invert_objective(cfg, layer, target)
    x0 = backbone.pre.noise(tuple(x_net.shape), torch.Generator().manual_seed(int(seed))).to(dev)
    options = RenderOptions(cfg.iterations, optimizer=cfg.optimizer, lr=cfg.learning_rate, history=cfg.lbfgs_history,
                            precision=precision, log_every=cfg.log_every, compile=cfg.compile)
    result = render(backbone.net, objective, x0, options, logging_step(on_log))
    return backbone.pre.to_pixels(result.x).clamp(0, 255), result


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two 0..255 images."""
    mse = (a.float() - b.float()).pow(2).mean().item()
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(255.0 ** 2 / mse)).item()
