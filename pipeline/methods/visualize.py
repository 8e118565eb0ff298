"""Zeiler & Fergus visualisation: each filter's top-k images, projected with the deconvnet.

Three steps, split so the dataset pass can be sharded and resumed:
1. `filter_maxima`: per image, each filter's strongest activation (value, y, x)
   in every chosen layer (one entry per image and filter, so a filter's top-k
   are k different images).
2. `merge_topk`: the k best entries per filter, ordered by value, ties broken
   by the sample's global index; a pure function of the set of entries, so it
   is the same whether they come from one worker, many, or per-shard partials.
3. `draw_grid`: per layer, filters as rows, the k deconvnet projections and
   beside them the k image patches cropped to the receptive field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from PIL import Image, ImageDraw

from pipeline.config import StyleConfig
from pipeline.errors import BadInput
from pipeline.models.layers import canonical_layer, layer_index
from pipeline.models.vgg import VGGFeatures
from pipeline.schema import Layers, NonNegative, NonNegativeInt, PositiveInt
from pipeline.methods.deconv import receptive_box, receptive_field


@dataclass
class VisualizeConfig(StyleConfig):
    """StyleConfig plus the layers to record and how the grids look.

    Pooling is always 'max' (the deconvnet unpools with max-pool switches).
    grid_filters: the first N filters of each layer are drawn (0 = all);
    top-k of every filter is recorded regardless.
    """

    preset: ClassVar[str] = "visualize"

    vis_layers: Layers = field(default_factory=lambda: [
        "block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"])
    top_k: PositiveInt = 9
    grid_filters: NonNegativeInt = 16
    cell: PositiveInt = 48
    size: PositiveInt = 128
    content_weight: NonNegative = 0.0

    def validate(self) -> "VisualizeConfig":
        self.pooling = "max"
        super().validate()
        if not self.vis_layers:
            raise BadInput("vis_layers must name at least one layer")
        arch = "vgg19" if self.network == "vgg19" else "vgg16"
        layers = [canonical_layer(s, arch) for s in self.vis_layers]
        self.vis_layers = sorted(dict.fromkeys(layers), key=lambda n: layer_index(n, arch))
        return self


def filter_maxima(net: VGGFeatures, x: torch.Tensor, layers: list[str]) -> dict[str, dict[str, list]]:
    """{layer: {"value": [C], "y": [C], "x": [C]}} of one image x (1,3,H,W) in network space."""
    with torch.no_grad():
        acts = net(x, layers)
    out = {}
    for layer in layers:
        a = acts[layer][0].float()
        c, h, w = a.shape
        flat = a.reshape(c, h * w)
        idx = flat.argmax(1)  # first maximum in row-major order
        vals = flat.gather(1, idx[:, None])[:, 0]
        out[layer] = {"value": vals.cpu().tolist(), "y": (idx // w).cpu().tolist(), "x": (idx % w).cpu().tolist()}
    return out


@dataclass
class TopK:
    """Per filter, the k best (value, sample index, y, x); arrays of shape (C, <=k)."""

    value: np.ndarray
    index: np.ndarray
    y: np.ndarray
    x: np.ndarray

    @classmethod
    def empty(cls, channels: int) -> "TopK":
        z = np.zeros((channels, 0))
        return cls(z.astype(np.float32), z.astype(np.int64), z.astype(np.int64), z.astype(np.int64))

    @classmethod
    def of_samples(cls, entries: list[tuple[int, dict]]) -> "TopK":
        """From [(global index, {"value","y","x"} of one layer)] (one column per sample)."""
        return cls(np.array([e["value"] for _, e in entries], dtype=np.float32).T,
                   np.array([[i] * len(e["value"]) for i, e in entries], dtype=np.int64).T,
                   np.array([e["y"] for _, e in entries], dtype=np.int64).T,
                   np.array([e["x"] for _, e in entries], dtype=np.int64).T)

    def merged(self, other: "TopK", k: int) -> "TopK":
        """The k best of both, by value descending then sample index ascending."""
        v = np.concatenate([self.value, other.value], 1)
        i = np.concatenate([self.index, other.index], 1)
        y = np.concatenate([self.y, other.y], 1)
        x = np.concatenate([self.x, other.x], 1)
        order = np.lexsort((i, -v.astype(np.float64)), axis=-1)[:, :k]
        take = lambda a: np.take_along_axis(a, order, 1)  # noqa: E731
        return TopK(take(v), take(i), take(y), take(x))

    def to_json(self) -> dict:
        return {"value": self.value.tolist(), "index": self.index.tolist(), "y": self.y.tolist(),
                "x": self.x.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "TopK":
        return cls(np.array(d["value"], dtype=np.float32).reshape(len(d["value"]), -1),
                   *(np.array(d[n], dtype=np.int64).reshape(len(d[n]), -1) for n in ("index", "y", "x")))


def merge_topk(parts: list[TopK], k: int) -> TopK:
    """Merge partial top-k results (per sample chunk, per shard, ...) into one."""
    out = parts[0].merged(TopK.empty(parts[0].value.shape[0]), k)
    for p in parts[1:]:
        out = out.merged(p, k)
    return out


# ------------------------------------------------------------------ drawing


def _square_crop(img: Image.Image, box: tuple[int, int, int, int], centre: tuple[float, float],
                 size: int, fill) -> Image.Image:
    """The box region placed where it lies inside the full size×size receptive field."""
    top, left, bottom, right = box
    half = (size - 1) / 2
    canvas = Image.new("RGB", (size, size), fill)
    canvas.paste(img.crop((left, top, right, bottom)),
                 (int(round(left - (centre[1] - half))), int(round(top - (centre[0] - half)))))
    return canvas


def projection_image(delta_pixels: torch.Tensor) -> Image.Image:
    """A projection (3,H,W, pixel units) shown as grey + scaled signed values."""
    d = delta_pixels.float()
    peak = d.abs().max().clamp_min(1e-12)
    arr = (128.0 + 127.0 * d / peak).clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def patch_pair(net: VGGFeatures, layer: str, image: Image.Image, projection: Image.Image,
               y: int, x: int, cell: int) -> tuple[Image.Image, Image.Image]:
    """(projection patch, image patch) cropped to position (y, x)'s receptive field, cell×cell."""
    size, stride, offset = receptive_field(net, layer)
    box = receptive_box(net, layer, y, x, (image.height, image.width))
    centre = (offset + y * stride, offset + x * stride)
    proj = _square_crop(projection, box, centre, size, (128, 128, 128))
    patch = _square_crop(image, box, centre, size, (128, 128, 128))
    return (proj.resize((cell, cell), Image.Resampling.NEAREST if size < cell else Image.Resampling.LANCZOS),
            patch.resize((cell, cell), Image.Resampling.NEAREST if size < cell else Image.Resampling.LANCZOS))


def draw_grid(rows: list[tuple[int, list[tuple[Image.Image, Image.Image] | None]]], k: int, cell: int,
              title: str) -> Image.Image:
    """rows: (filter, k (projection, patch) pairs or None); projections left, patches right."""
    label_w, gap, head = 36, 6, 16
    width = label_w + 2 * k * cell + gap
    sheet = Image.new("RGB", (width, head + len(rows) * (cell + 2)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((2, 2), title, fill=(0, 0, 0))
    for r, (filt, pairs) in enumerate(rows):
        top = head + r * (cell + 2)
        draw.text((2, top + cell // 2 - 5), f"f{filt}", fill=(0, 0, 0))
        for j, pair in enumerate(pairs):
            if pair is None:
                continue
            proj, patch = pair
            sheet.paste(proj, (label_w + j * cell, top))
            sheet.paste(patch, (label_w + k * cell + gap + j * cell, top))
    return sheet
