"""Exact tiled evaluation: the loss and gradient of a whole image, computed tile by tile.

Why: every term of the style-transfer loss is a sum over positions. The content term and
total variation are sums of per-position terms and a Gram matrix is a sum of outer products,
G = Σ_tiles F_tᵀF_t. So one evaluation can run the network over one tile at a time and still
give the whole image's loss and gradient, up to floating-point rounding, with a peak memory of
one tile's activations plus the C×C Grams (and the image-sized vectors), whatever the size:

- pass 1 runs every tile forward without gradients and accumulates each style layer's Gram
  and the content term's sum;
- pass 2 runs each tile forward again and back-propagates, into the tile's crop of the image,
  the derivative of the *global* loss at the tile's own features: for a style layer the
  engine's one-step dF = 4g·F·(G − T) with the global G − T, for the content layer
  2·(a − a_C). Each feature belongs to exactly one tile, so the pixel gradients summed over
  the tiles are the whole image's gradient.

The halo. A tile's features equal the whole image's where the tile's crop contains their whole
receptive field: the crop's own zero padding at its cut edges then never reaches them. For a
VGG layer reached through convolutions (3×3, padding 1) and 2×2 poolings the dependency of an
output at index p is the input interval [p·s + lo, p·s + hi] (s the layer's total stride,
`receptive_interval`); for block5_conv1 of VGG16 that is [16p − 58, 16p + 73], so 58 px on
each side beyond the layer's own 16-px cell. The halo is that reach rounded up to the total
stride (64 px for VGG16 up to block5_conv1), and every tile's interior and crop start on a
multiple of the stride, so the pooling windows of a crop are the whole image's windows
(max pooling as well as average). The halo is exact by construction, not an approximation;
what remains is the order of floating-point sums (tests/unit/engine/test_tiles.py measures
it: relative loss error ~1e-7, gradient cosine 1 − 1e-9 in fp32).

Mean-normalised terms (`loss_reduction: mean`) divide by the whole layer's element count, never
a tile's. Total variation reads only pixels: it is evaluated on the whole image at once (its
cost and memory are a few image-sized vectors).

Only the terms of style transfer (Content, Style, TotalVariation, scaled and summed) tile;
an objective with any other term is refused (`split_terms`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pipeline.engine.objectives import Content, Objective, Scaled, Style, Sum, TotalVariation, fp32, no_autocast
from pipeline.engine.objectives import tv_loss
from pipeline.engine.precision import autocast

MIN_TILE = 64  # smallest tile side (px) `auto` and the fallback go down to


# ------------------------------------------------------------------ geometry

def receptive_interval(stages, deepest: str) -> tuple[int, int, int]:
    """(lo, hi, stride): the output at index p of layer `deepest` depends on input pixels
    [p·stride + lo, p·stride + hi] (3×3 convolutions with padding 1, 2×2 poolings)."""
    lo, hi, stride = 0, 0, 1
    for kind, name in stages:
        if kind == "conv":
            lo, hi = lo - stride, hi + stride
        else:
            hi, stride = hi + stride, stride * 2
        if name == deepest:
            return lo, hi, stride
    raise ValueError(f"layer {deepest!r} is not in the network")


def halo_for(stages, layers) -> tuple[int, int]:
    """(halo, align) in pixels for the deepest of `layers`: the receptive field's reach beyond
    the layer's own cell, rounded up to its total stride; and that stride (tile offsets' multiple)."""
    order = [name for _, name in stages]
    deepest = max(layers, key=order.index)
    lo, hi, stride = receptive_interval(stages, deepest)
    reach = max(-lo, hi - (stride - 1))
    return int(math.ceil(reach / stride) * stride), stride


@dataclass(frozen=True)
class Tile:
    """A tile's interior [y0, y1) × [x0, x1) and the crop [cy0, cy1) × [cx0, cx1) run through the network."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int


def round_tile(tile: int, align: int) -> int:
    """A tile side rounded up to a multiple of the stride (never below one stride)."""
    return max(align, int(math.ceil(tile / align)) * align)


def tile_grid(height: int, width: int, tile: int, halo: int, align: int) -> list[Tile]:
    """Interiors of `tile` px (a multiple of `align`; the last row/column takes the rest), crops
    extended by `halo` px and clipped to the image."""
    tile = round_tile(tile, align)
    ys = list(range(0, height, tile)) + [height]
    xs = list(range(0, width, tile)) + [width]
    out = []
    for y0, y1 in zip(ys, ys[1:]):
        for x0, x1 in zip(xs, xs[1:]):
            out.append(Tile(y0, y1, x0, x1, max(0, y0 - halo), min(height, y1 + halo),
                            max(0, x0 - halo), min(width, x1 + halo)))
    return out


def tile_count(wh: tuple[int, int], tile: int, align: int = 16) -> int:
    tile = round_tile(tile, align)
    return math.ceil(wh[0] / tile) * math.ceil(wh[1] / tile)


# ------------------------------------------------------------------ the objective's terms

def split_terms(objective: Objective, k: float = 1.0) -> list[tuple[float, Objective]]:
    """(weight, term) for every Content, Style and TotalVariation term of a sum of scaled terms;
    any other kind of term cannot be tiled and is refused."""
    if isinstance(objective, Sum):
        return [pair for t in objective.terms for pair in split_terms(t, k)]
    if isinstance(objective, Scaled):
        return split_terms(objective.inner, k * objective.k)
    if isinstance(objective, (Content, Style, TotalVariation)):
        return [(k, objective)]
    raise ValueError(f"tiled evaluation supports content, style and tv terms, not {type(objective).__name__}")


def _strides(stages) -> dict[str, int]:
    out, s = {}, 1
    for kind, name in stages:
        if kind == "pool":
            s *= 2
        out[name] = s
    return out


def interior(a: torch.Tensor, stride: int, t: Tile) -> tuple[torch.Tensor, tuple[slice, slice]]:
    """The tile's own features of a layer of total stride `stride` (computed from the tile's crop)
    and where they sit in the whole layer. Interiors and crops start on multiples of the stride,
    and a tile's interior ends on one too unless it ends at the image's edge, where the whole
    layer's floor(H / stride) ends as well."""
    gy0, gx0, gy1, gx1 = t.y0 // stride, t.x0 // stride, t.y1 // stride, t.x1 // stride
    ly0, lx0 = gy0 - t.cy0 // stride, gx0 - t.cx0 // stride
    inner = a[:, :, ly0: ly0 + (gy1 - gy0), lx0: lx0 + (gx1 - gx0)]
    return inner, (slice(gy0, gy1), slice(gx0, gx1))


def _rows(a: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, h·w, C) in fp32 (a copy; the tile's interior is not contiguous)."""
    b, c = a.shape[:2]
    return fp32(a.permute(0, 2, 3, 1).reshape(b, -1, c))


# ------------------------------------------------------------------ the evaluation

class TiledLossAndGrad:
    """LossAndGrad's contract, tile by tile: evaluates the objective at x and leaves
    d(sign·Σ losses)/dx in x.grad; returns the per-term per-sample losses and the total.

    `evaluate(x)` is pass 1 alone (losses without gradients, for the render's final losses).
    """

    mode = "none"  # never compiled: each tile's crop has its own shape
    compiled = False

    def __init__(self, net, objective: Objective, precision: str, channels_last: bool, tile: int):
        self.net, self.objective = net, objective
        self.precision, self.channels_last = precision, channels_last
        self.terms = split_terms(objective)
        stages = net.stages
        layers = list(objective.layers)
        self.halo, self.align = halo_for(stages, layers) if layers else (0, 1)
        self.tile = round_tile(tile, self.align)
        self.stride = _strides(stages)
        self.tiles_run = 0

    # -------------------------------------------------------------- helpers
    def grid(self, x: torch.Tensor) -> list[Tile]:
        return tile_grid(x.shape[-2], x.shape[-1], self.tile, self.halo, self.align)

    def _forward(self, crop: torch.Tensor) -> dict[str, torch.Tensor]:
        self.tiles_run += 1
        with autocast(self.precision, crop.device):
            xin = crop.contiguous(memory_format=torch.channels_last) if self.channels_last else crop
            return self.net(xin, self.objective.layers)

    def _layer_size(self, layer: str, x: torch.Tensor) -> tuple[int, int]:
        s = self.stride[layer]
        return x.shape[-2] // s, x.shape[-1] // s

    # -------------------------------------------------------------- pass 1
    @torch.no_grad()
    def _pass1(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[int, torch.Tensor]]:
        """Per-term per-sample losses at x, and each style term's global G − T (by term index)."""
        b = x.shape[0]
        grams: dict[int, torch.Tensor] = {}
        sums: dict[int, torch.Tensor] = {}
        fill: dict[int, torch.Tensor] = {}
        for i, (_, term) in enumerate(self.terms):
            if isinstance(term, Content) and term.target is None:  # the render starts at the content
                fill[i] = None
        for t in self.grid(x):
            acts = self._forward(x[:, :, t.cy0:t.cy1, t.cx0:t.cx1])
            for i, (_, term) in enumerate(self.terms):
                if isinstance(term, TotalVariation):
                    continue
                inner, (sy, sx) = interior(acts[term.layer], self.stride[term.layer], t)
                with no_autocast(x.device.type):
                    if isinstance(term, Style):
                        m = _rows(inner)
                        g = torch.bmm(m.transpose(1, 2), m)
                        grams[i] = grams[i] + g if i in grams else g
                    else:
                        if i in fill:
                            if fill[i] is None:
                                h, w = self._layer_size(term.layer, x)
                                c = inner.shape[1]
                                fill[i] = torch.empty((b, c, h, w), dtype=torch.float32, device=x.device)
                            fill[i][:, :, sy, sx] = fp32(inner)
                            target = fill[i][:, :, sy, sx]
                        else:
                            target = term.target[:, :, sy, sx]
                        d = (fp32(inner) - fp32(target)).pow(2).flatten(1).sum(1)
                        sums[i] = sums[i] + d if i in sums else d
            del acts
        for i, target in fill.items():
            self.terms[i][1].target = target
        parts: dict[str, torch.Tensor] = {}
        diffs: dict[int, torch.Tensor] = {}
        for i, (k, term) in enumerate(self.terms):
            if isinstance(term, TotalVariation):
                v = tv_loss(x, term.reduction)
            elif isinstance(term, Style):
                h, w = self._layer_size(term.layer, x)
                c = term.target.shape[-1]
                diff = grams[i] - fp32(term.target)
                diffs[i] = diff
                v = diff.pow(2).flatten(1).sum(1) / float(2 * h * w) ** 2
                if term.reduction == "mean":
                    v = v * (4.0 / (c * c))
            else:
                h, w = self._layer_size(term.layer, x)
                v = sums[i]
                if term.reduction == "mean":
                    v = v / (term.target.shape[1] * h * w)
            v = k * v
            parts[term.name] = parts[term.name] + v if term.name in parts else v
        return parts, diffs

    def evaluate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-term per-sample losses at x, without gradients."""
        return self._pass1(x.detach())[0]

    # -------------------------------------------------------------- pass 2
    def __call__(self, x: torch.Tensor, sign: float = 1.0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        parts, diffs = self._pass1(x.detach())
        for t in self.grid(x):
            acts = self._forward(x[:, :, t.cy0:t.cy1, t.cx0:t.cx1])
            outs, grads = [], []
            for i, (k, term) in enumerate(self.terms):
                if isinstance(term, TotalVariation):
                    continue
                inner, (sy, sx) = interior(acts[term.layer], self.stride[term.layer], t)
                if inner.numel() == 0:
                    continue
                h, w = self._layer_size(term.layer, x)
                with torch.no_grad(), no_autocast(x.device.type):
                    if isinstance(term, Style):
                        c = inner.shape[1]
                        coef = 4.0 / float(2 * h * w) ** 2 * (4.0 / (c * c) if term.reduction == "mean" else 1.0)
                        dm = torch.bmm(_rows(inner), diffs[i]) * (sign * k * coef)  # (B, n, C)
                        b, _, ih, iw = inner.shape
                        g = dm.reshape(b, ih, iw, c).permute(0, 3, 1, 2)
                    else:
                        norm = term.target.shape[1] * h * w if term.reduction == "mean" else 1.0
                        g = (fp32(inner) - term.target[:, :, sy, sx]) * (2.0 * sign * k / norm)
                outs.append(inner)
                grads.append(g.to(inner.dtype))
            if outs:
                torch.autograd.backward(outs, grads)
            del acts, outs, grads
        tv = [(k, term) for k, term in self.terms if isinstance(term, TotalVariation)]
        if tv:
            total_tv = sum(k * tv_loss(x, term.reduction) for k, term in tv)
            (sign * total_tv).sum().backward()
        total = (sign * sum(parts.values())).sum()
        return parts, total.detach()


# ------------------------------------------------------------------ tiled features (no gradients)

@torch.no_grad()
def tiled_activations(net, x: torch.Tensor, layer: str, tile: int, precision: str,
                      channels_last: bool = False) -> torch.Tensor:
    """The whole image's activations of one layer (fp32, (B, C, h, w)), computed tile by tile."""
    ev = TiledLossAndGrad(net, Content(layer, None), precision, channels_last, tile)
    ev.evaluate(x)
    return ev.terms[0][1].target


@torch.no_grad()
def tiled_grams(net, x: torch.Tensor, layers, tile: int, precision: str,
                channels_last: bool = False) -> dict[str, torch.Tensor]:
    """Gram matrices (fp32, (B, C, C)) of `layers` of the whole image, computed tile by tile."""
    stages = net.stages
    halo, align = halo_for(stages, list(layers))
    stride = _strides(stages)
    out: dict[str, torch.Tensor] = {}
    for t in tile_grid(x.shape[-2], x.shape[-1], tile, halo, align):
        with autocast(precision, x.device):
            crop = x[:, :, t.cy0:t.cy1, t.cx0:t.cx1]
            acts = net(crop.contiguous(memory_format=torch.channels_last) if channels_last else crop, layers)
        for layer in layers:
            inner, _ = interior(acts[layer], stride[layer], t)
            with no_autocast(x.device.type):
                m = _rows(inner)
                g = torch.bmm(m.transpose(1, 2), m)
            out[layer] = out[layer] + g if layer in out else g
    return out
