"""Gatys et al. style transfer: the objective, the initial image, colour preservation.

total = content_weight·J_C + Σ_l style_weight_l·(1/L)·J_S^l + tv_weight·J_TV
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.config import StyleConfig
from pipeline.engine.loop import RenderOptions, RenderResult, compile_mode, logging_step, render
from pipeline.engine.objectives import Content, Style, Sum, TotalVariation, gram
from pipeline.engine.precision import autocast, resolve_precision, use_channels_last
from pipeline.engine.tile_plan import TilePlan
from pipeline.pixels import resize, target_size, to_tensor
from pipeline.methods.stages import stage_plan
from pipeline.models.vgg import Backbone


def content_size(img: Image.Image, cfg: StyleConfig) -> tuple[int, int]:
    return cfg.working_size(img.size)


def style_size(style: Image.Image, content_wh: tuple[int, int], cfg: StyleConfig) -> tuple[int, int]:
    """The reference resizes the style to the content's size; style_scale keeps its aspect."""
    if cfg.style_scale is None:
        return content_wh
    longest = max(1, round(max(content_wh) * cfg.style_scale))
    return target_size(style.width, style.height, longest, upscale=True)


def blend_weights(blend: list[float] | None, n_styles: int) -> list[float]:
    """The weight of each style image (1 each without a blend); a blend of another length is refused."""
    weights = list(blend) if blend else [1.0] * n_styles
    if len(weights) != n_styles:
        from pipeline.errors import BadInput

        raise BadInput(f"style_blend has {len(weights)} values but {n_styles} style images were given")
    return weights


class StyleTargets:
    """Gram targets per (style set, size), computed once and reused for every image."""

    def __init__(self, backbone: Backbone, cfg: StyleConfig, max_entries: int = 16):
        self.backbone, self.cfg = backbone, cfg
        self._cache: OrderedDict = OrderedDict()
        self.max_entries = max_entries
        self.computed = 0

    def get(self, styles: list[tuple[str, Image.Image]], blend: list[float] | None,
            content_wh: tuple[int, int], tile: int = 0) -> dict[str, torch.Tensor]:
        """Blended Gram targets at content_wh; tile > 0 computes each style's Grams tile by tile
        (the style is resized to the content's size: at a print's size its activations would
        not fit whole either). Cached by (styles, blend, size): tiled Grams equal whole ones
        up to rounding."""
        weights = blend_weights(blend, len(styles))
        total_w = sum(weights)
        key = (tuple(name for name, _ in styles), tuple(weights), content_wh)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        net, pre, dev = self.backbone.net, self.backbone.pre, self.backbone.device
        precision = resolve_precision(self.cfg.precision, dev)
        targets: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for (name, img), w in zip(styles, weights):
                wh = style_size(img, content_wh, self.cfg)
                pixels = to_tensor(resize(img, wh)).to(dev)
                if tile:
                    from pipeline.engine.tiles import tiled_grams

                    whole = tiled_grams(net, pre.to_net(pixels), self.cfg.style_layers, tile, precision,
                                        use_channels_last(precision, dev))
                else:
                    with autocast(precision, dev):
                        acts = net(pre.to_net(pixels), self.cfg.style_layers)
                    whole = {layer: gram(acts[layer]) for layer in self.cfg.style_layers}
                for layer in self.cfg.style_layers:
                    # Gram per generated-layer pixel: scale by N_gen / N_style so a
                    # style at another size targets the same per-pixel statistics.
                    h, wd = _layer_hw(layer, wh, net)
                    gh, gw = _layer_hw(layer, content_wh, net)
                    g = whole[layer] * (w / total_w) * (gh * gw) / (h * wd)
                    targets[layer] = targets[layer] + g if layer in targets else g
        self.computed += 1
        self._cache[key] = targets
        if len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return targets


def _layer_hw(layer: str, wh: tuple[int, int], net) -> tuple[int, int]:
    """Spatial size of a layer's output for an input of size wh (pooling floors)."""
    w, h = wh
    for kind, name in net.stages:
        if kind == "pool":
            w, h = w // 2, h // 2
        if name == layer:
            break
    return h, w


AT_FIRST_EVALUATION = "at the first evaluation"  # the content target when the render starts at the content


def build_objective(cfg: StyleConfig, content_acts: torch.Tensor | str | None,
                    style_grams: dict[str, torch.Tensor]):
    """content_weight·Content + Σ style_weight_l/L·Style_l + tv_weight·TV.

    content_acts: the content's activations at the content layer, None (no content term), or
    AT_FIRST_EVALUATION (taken from the render's first evaluation, which is at the content).
    """
    terms = []
    red = cfg.loss_reduction
    content_weight = cfg.balanced_content_weight()  # `strength`, where the preset uses it
    if content_acts is not None and content_weight > 0:
        target = None if content_acts is AT_FIRST_EVALUATION else content_acts
        terms.append(content_weight * Content(cfg.content_layer, target, red))
    n = len(cfg.style_layers)
    for layer, w in zip(cfg.style_layers, cfg.style_weights):
        if w:
            terms.append((w / n) * Style(layer, style_grams[layer], red))
    if cfg.tv_weight > 0:
        terms.append(cfg.tv_weight * TotalVariation(red))
    return Sum(terms)


def initial_image(cfg: StyleConfig, backbone: Backbone, content_net: torch.Tensor,
                  style_imgs: list[Image.Image], seeds: list[int]) -> torch.Tensor:
    """x0 in network space for each sample: noise (seeded), content, or the first style."""
    b, _, h, w = content_net.shape
    if cfg.init == "content":
        return content_net.clone()
    if cfg.init == "style":
        pixels = to_tensor(resize(style_imgs[0], (w, h))).to(content_net.device)
        return backbone.pre.to_net(pixels).expand(b, -1, -1, -1).clone()
    noise = [backbone.pre.noise((1, 3, h, w), torch.Generator().manual_seed(int(s))) for s in seeds]
    return torch.cat(noise).to(content_net.device)


def rgb_to_yiq(p: torch.Tensor) -> torch.Tensor:
    m = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                     dtype=p.dtype, device=p.device)
    return torch.einsum("ij,bjhw->bihw", m, p)


def yiq_to_rgb(p: torch.Tensor) -> torch.Tensor:
    m = torch.tensor([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]],
                     dtype=p.dtype, device=p.device)
    return torch.einsum("ij,bjhw->bihw", m, p)


def preserve_colors(output_pixels: torch.Tensor, content_pixels: torch.Tensor) -> torch.Tensor:
    """Keep the output's luminance and the content's chrominance (YIQ)."""
    out = rgb_to_yiq(output_pixels)
    ref = rgb_to_yiq(content_pixels)
    return yiq_to_rgb(torch.cat([out[:, :1], ref[:, 1:]], 1))


@dataclass
class StylizeJob:
    """One batch of same-size contents sharing one style set."""

    contents: list[Image.Image]
    styles: list[tuple[str, Image.Image]]
    seeds: list[int]


def render_stage(backbone: Backbone, cfg: StyleConfig, targets: StyleTargets, job: StylizeJob, wh: tuple[int, int],
                 iterations: int, precision: str, x0: torch.Tensor | None, on_log=None, on_snapshot=None,
                 snapshot_every: int = 0, plan: TilePlan | None = None,
                 extra=()) -> tuple[torch.Tensor, RenderResult]:
    """One render of the batch at size wh (from x0, or from the configured initial image), whole
    or in the plan's tiles with the plan's L-BFGS history; `extra` objective terms are added to the
    style-transfer objective (video: the temporal term)."""
    dev = backbone.device
    tile = plan.tile if plan is not None else 0
    history = plan.history if plan is not None else cfg.lbfgs_history
    pixels = torch.cat([to_tensor(resize(img, wh)) for img in job.contents]).to(dev)
    content_net = backbone.pre.to_net(pixels)
    grams = targets.get(job.styles, cfg.style_blend, wh, tile)
    starts_at_content = x0 is None and cfg.init == "content"
    if x0 is None:
        x0 = initial_image(cfg, backbone, content_net, [img for _, img in job.styles], job.seeds)
    options = RenderOptions(iterations, optimizer=cfg.optimizer, lr=cfg.learning_rate, history=history,
                            precision=precision, log_every=cfg.log_every, snapshot_every=snapshot_every,
                            max_step=cfg.lbfgs_max_step * backbone.pre.unit, compile=cfg.compile, tile=tile)
    content_acts = None
    if cfg.content_weight > 0 and starts_at_content and compile_mode(backbone.net, x0, options) == "none":
        # the first evaluation's forward is at the content itself: its activations are the
        # target, bit for bit, without a forward pass of their own (one of a 1-evaluation render's four passes)
        content_acts = AT_FIRST_EVALUATION
    elif cfg.content_weight > 0 and tile:
        from pipeline.engine.tiles import tiled_activations

        content_acts = tiled_activations(backbone.net, content_net, cfg.content_layer, tile, precision,
                                         use_channels_last(precision, dev))
    elif cfg.content_weight > 0:
        # in the layout the optimised image's activations will have, so the loss reads both alike
        fmt = torch.channels_last if use_channels_last(precision, dev) else torch.contiguous_format
        with torch.no_grad(), autocast(precision, dev):
            content_acts = backbone.net(content_net.contiguous(memory_format=fmt),
                                        [cfg.content_layer])[cfg.content_layer].float()
    objective = build_objective(cfg, content_acts, grams)
    if extra:
        objective = Sum([objective, *extra])
    result = render(backbone.net, objective, x0, options, logging_step(on_log, on_snapshot))
    if result.tiles is not None:
        result.tiles["lbfgs_history"] = history
    return pixels, result


def stage_plans(backbone: Backbone, cfg: StyleConfig, sizes: list[tuple[int, int]], batch: int) -> list[TilePlan | None]:
    """Per stage: whole (None) or the TilePlan (pipeline/engine/tile_plan.py) under cfg.tile and
    the memory budget, read once for the whole schedule. tile "none" never plans (a dataset run's
    out-of-memory fallback handles what does not fit); a stage nothing fits raises TileMemoryError,
    an out-of-memory error, so that fallback handles it too."""
    if cfg.tile == "none":
        return [None] * len(sizes)
    from pipeline.engine.tile_plan import TileMemoryError, budget, plan_stage

    precision = resolve_precision(cfg.precision, backbone.device)
    room, where = budget(backbone.device, cfg.max_memory)
    layers = [cfg.content_layer, *cfg.style_layers]
    plans = []
    for wh in sizes:
        plan = plan_stage(backbone.arch, layers, wh, precision, cfg.lbfgs_history, batch, cfg.tile, room)
        if plan is None:
            raise TileMemoryError(f"{wh[0]}x{wh[1]} px, batch {batch}, does not fit {where} even in tiles "
                                  f"(tile: {cfg.tile})")
        plans.append(plan if plan.tile else None)
    return plans


def stylize_batch(backbone: Backbone, cfg: StyleConfig, targets: StyleTargets, job: StylizeJob,
                  on_log=None, on_snapshot=None, snapshot_every: int = 0) -> tuple[torch.Tensor, RenderResult]:
    """Optimise a batch of same-size contents; returns output pixels (B,3,H,W) 0..255 and the result.

    The stages of `stage_plan` run in turn, each from the bilinearly upsampled result of
    the previous one (the first from the configured initial image at its size), with the
    style targets computed at each stage's size. Under loss_reduction "sum" a coarse stage
    scales the content weight by the pixel ratio (the summed content term grows with the
    pixel count, the style terms do not); "mean" terms need no correction. Progress runs
    on one scale; evaluations, seconds and history cover every stage. Snapshots are of
    the full-size stage. Each stage runs whole or in tiles as `stage_plans` decides (with
    tile "auto", only the stages that do not fit whole are tiled).
    """
    dev = backbone.device
    wh = content_size(job.contents[0], cfg)
    precision = resolve_precision(cfg.precision, dev)
    plan = stage_plan(cfg.iterations, cfg.coarse_stages, wh, cfg.stage_base, cfg.stage_base_share)
    tiling = stage_plans(backbone, cfg, [stage_wh for _, stage_wh in plan], len(job.contents))
    total = cfg.iterations
    x0, done, history, seconds = None, 0, [], 0.0
    for i, (n, stage_wh) in enumerate(plan):
        last = i == len(plan) - 1
        stage_cfg = cfg
        if not last and cfg.loss_reduction == "sum":
            ratio = (wh[0] * wh[1]) / (stage_wh[0] * stage_wh[1])
            stage_cfg = dataclasses.replace(cfg, content_weight=cfg.content_weight * ratio)
        if x0 is not None:
            x0 = F.interpolate(x0, size=(stage_wh[1], stage_wh[0]), mode="bilinear", align_corners=False)
        log = (lambda e, _n, rows, done=done: on_log(done + e, total, rows)) if on_log else None
        pixels, result = render_stage(backbone, stage_cfg, targets, job, stage_wh, n, precision, x0, log,
                                      on_snapshot if last else None, snapshot_every if last else 0, tiling[i])
        history += [(done + e, v) for e, v in result.history]
        done += result.evaluations
        seconds += result.seconds
        x0 = result.x
    if len(plan) > 1:
        result = dataclasses.replace(result, evaluations=done, seconds=seconds, history=history)
    out = backbone.pre.to_pixels(result.x)
    if cfg.preserve_colors:
        out = preserve_colors(out, pixels)
    return out.clamp(0, 255), result
