"""The look: a ruler for a stylized picture, on a network the optimisation does not use.

A loss measured on the VGG16 we optimise is not a fair judge of the picture, so the
look is read on EfficientNet-Lite0 (the classifier `nst imagine` ships). Two numbers:

- `structure`: SSIM of the luminance of output and content (7x7 uniform window, the
  usual constants K1 0.01, K2 0.03 on 0..255), averaged over the valid windows.
  1 means the layout is intact; an unrelated painting scores about 0.13.
- `style_match`: 1 - D(output, style) / D(content, style), where D is the mean over five
  stages (blocks 1, 3, 5, 8, 11) of ||G_a - G_b||_F / ||G_b||_F and G is the channel
  Gram matrix divided by the number of positions. 0: no style taken; 1: the style's
  statistics are met.

All three images are first brought to one viewing size: the content to a longest side of
256 (LANCZOS), the output and the style to exactly the content's viewing size. No file
I/O here: callers hand in decoded PIL images (cli/look.py, tasks/stylize.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

VIEW_SIZE = 256
SSIM_WINDOW = 7
SSIM_K1, SSIM_K2, SSIM_RANGE = 0.01, 0.03, 255.0
STAGES = ("block1", "block3", "block5", "block8", "block11")
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Look:
    """The two numbers of one output (style_match is nan when content and style look the same)."""

    structure: float
    style_match: float

    def as_dict(self, digits: int = 4) -> dict:
        sm = None if math.isnan(self.style_match) else round(self.style_match, digits)
        return {"structure": round(self.structure, digits), "style_match": sm}


def view_size(wh: tuple[int, int], size: int = VIEW_SIZE) -> tuple[int, int]:
    """(w, h) with the longest side `size`, enlarging small images as well."""
    w, h = wh
    scale = size / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def to_view(img: Image.Image, wh: tuple[int, int]) -> torch.Tensor:
    """PIL RGB -> (1, 3, h, w) float 0..255 at exactly wh (LANCZOS)."""
    import numpy as np

    if img.size != tuple(wh):
        img = img.resize(wh, Image.Resampling.LANCZOS)
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0)


def luminance(pixels: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB 0..255 -> (B, 1, H, W) luma (ITU-R BT.601)."""
    w = torch.tensor(LUMA, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
    return (pixels * w).sum(1, keepdim=True)


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = SSIM_WINDOW) -> torch.Tensor:
    """Mean SSIM per sample of single-channel images (B, 1, H, W) in 0..255.

    Uniform window, sample (n-1) covariances, only windows that fit inside the image
    (the conventions of scikit-image's structural_similarity). Images smaller than
    the window are compared with one window as large as they are.
    """
    x, y = x.double(), y.double()
    k = min(window, x.shape[-1], x.shape[-2])
    n = k * k
    c1, c2 = (SSIM_K1 * SSIM_RANGE) ** 2, (SSIM_K2 * SSIM_RANGE) ** 2

    def mean(t):
        return F.avg_pool2d(t, k, stride=1)

    mx, my = mean(x), mean(y)
    norm = n / (n - 1) if n > 1 else 1.0
    vx = (mean(x * x) - mx * mx) * norm
    vy = (mean(y * y) - my * my) * norm
    cxy = (mean(x * y) - mx * my) * norm
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3))


def position_gram(f: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) channel Gram divided by the number of positions."""
    b, c, h, w = f.shape
    m = f.reshape(b, c, h * w).double()
    return m @ m.transpose(1, 2) / (h * w)


class LookRuler:
    """Scores outputs against their content and style; load once, call per sample.

    `score(content, style, outputs)` -> one Look per output. The network is the frozen
    EfficientNet-Lite0 with folded batch norms, run without gradients in fp32.
    """

    def __init__(self, state: dict[str, torch.Tensor] | None = None, device: str | torch.device = "cpu"):
        from pipeline.models.efficientnet import EfficientNetLite0
        from pipeline.models.preprocess import Preprocess

        if state is None:
            from pipeline.models.weights import load_efficientnet

            state, _ = load_efficientnet()
        self.device = torch.device(device)
        self.net = EfficientNetLite0(state).to(self.device)
        self.pre = Preprocess("torchvision")

    @torch.no_grad()
    def grams(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        """Per stage, the (B, C, C) position-normalised Gram matrices of a batch in 0..255."""
        feats = self.net(self.pre.to_net(pixels.to(self.device)), STAGES)
        return [position_gram(feats[s]) for s in STAGES]

    @staticmethod
    def distance(ga: list[torch.Tensor], gb: list[torch.Tensor]) -> torch.Tensor:
        """D(a, b) per sample: the mean over stages of ||G_a - G_b||_F / ||G_b||_F."""
        terms = [torch.linalg.matrix_norm(a - b) / torch.linalg.matrix_norm(b) for a, b in zip(ga, gb)]
        return torch.stack(terms).mean(0)

    @torch.no_grad()
    def score(self, content: Image.Image, style: Image.Image, outputs: list[Image.Image]) -> list[Look]:
        wh = view_size(content.size)
        c, s = to_view(content, wh), to_view(style, wh)
        outs = torch.cat([to_view(o, wh) for o in outputs])
        structure = ssim(luminance(outs), luminance(c).expand(len(outputs), -1, -1, -1))
        g = self.grams(torch.cat([c, s, outs]))
        g_content = [t[0:1] for t in g]
        g_style = [t[1:2] for t in g]
        g_out = [t[2:] for t in g]
        d_cs = float(self.distance(g_content, g_style)[0])
        d_os = self.distance(g_out, [t.expand_as(o) for t, o in zip(g_style, g_out)])
        looks = []
        for i in range(len(outputs)):
            d = float(d_os[i])
            match = (1.0 - d / d_cs) if d_cs > 0 else math.nan
            looks.append(Look(float(structure[i]), match))
        return looks

    def score_one(self, content: Image.Image, style: Image.Image, output: Image.Image) -> Look:
        return self.score(content, style, [output])[0]
