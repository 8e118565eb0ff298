"""DeepDream: amplify what one layer (or one channel of it) detects.

Gradient ascent on the mean squared activation with normalised gradient steps
(`normalized_sgd`), a random roll (jitter) before every step, pixels kept in
0..255, and an octave pyramid: dream the smallest octave first, carry the
added detail up to the next scale. `zoom_frames` feeds the result back with a
small centre zoom for an animation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
import torch.nn.functional as F

from pipeline.config import StyleConfig
from pipeline.engine.loop import RenderOptions, render
from pipeline.engine.objectives import MeanSquaredActivation
from pipeline.engine.precision import resolve_precision
from pipeline.errors import BadInput
from pipeline.models.layers import canonical_layer
from pipeline.models.vgg import Backbone
from pipeline.schema import (Float, NonNegative, NonNegativeInt, OpenFraction, Positive, PositiveInt,
                             choice)

ANIMATION_FORMATS = ("gif", "webp")
AnimationFormat = choice(*ANIMATION_FORMATS)
OctaveScale = Float(gt=1)


@dataclass
class DreamConfig(StyleConfig):
    """StyleConfig plus DeepDream's knobs. `iterations` are per octave (and per frame);
    `learning_rate` is the normalised step in network units (pixels for VGG16)."""

    preset: ClassVar[str] = "dream"

    dream_layer: str = "block4_conv2"
    channel: Optional[NonNegativeInt] = None
    iterations: PositiveInt = 10
    learning_rate: Positive = 1.5
    octaves: PositiveInt = 4
    octave_scale: OctaveScale = 1.4
    jitter: NonNegativeInt = 32
    zoom_frames: NonNegativeInt = 0
    zoom: OpenFraction = 0.05
    animation_format: AnimationFormat = "gif"
    frame_ms: PositiveInt = 100
    content_weight: NonNegative = 0.0
    tv_weight: NonNegative = 0.0

    def validate(self) -> "DreamConfig":
        super().validate()
        arch = "vgg19" if self.network == "vgg19" else "vgg16"
        self.dream_layer = canonical_layer(self.dream_layer, arch)
        if self.channel is not None and self.channel >= layer_width(self.dream_layer):
            raise BadInput(f"channel must be an integer in 0..{layer_width(self.dream_layer) - 1} for "
                           f"{self.dream_layer} or null, got {self.channel!r}")
        return self


def layer_width(layer: str) -> int:
    """Channels of a VGG layer (blockN_*): 64, 128, 256, 512, 512."""
    return (64, 128, 256, 512, 512)[int(layer[5]) - 1]


class Jitter:
    """step_hook for `render`: undo the last random roll, roll anew, clamp to valid pixels."""

    def __init__(self, max_shift: int, generator: torch.Generator, low: torch.Tensor, high: torch.Tensor):
        self.max_shift, self.gen = max_shift, generator
        self.low, self.high = low, high
        self.shift = (0, 0)

    def _draw(self) -> tuple[int, int]:
        if self.max_shift == 0:
            return (0, 0)
        s = torch.randint(-self.max_shift, self.max_shift + 1, (2,), generator=self.gen)
        return int(s[0]), int(s[1])

    def start(self, x: torch.Tensor) -> torch.Tensor:
        self.shift = self._draw()
        return torch.roll(x, self.shift, dims=(2, 3))

    def __call__(self, x: torch.Tensor, step: int) -> None:
        new = self._draw()
        back = torch.roll(x, (-self.shift[0], -self.shift[1]), dims=(2, 3))
        x.copy_(torch.maximum(torch.minimum(torch.roll(back, new, dims=(2, 3)), self.high), self.low))
        self.shift = new

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        return torch.roll(x, (-self.shift[0], -self.shift[1]), dims=(2, 3))


def pixel_bounds(backbone: Backbone, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Network-space images of pixel 0 and 255, per channel (1,3,1,1)."""
    lo = backbone.pre.to_net(torch.zeros(1, 3, 1, 1, device=device))
    hi = backbone.pre.to_net(torch.full((1, 3, 1, 1), 255.0, device=device))
    return torch.minimum(lo, hi), torch.maximum(lo, hi)


def octave_sizes(h: int, w: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Sizes from the smallest octave to the full size (never below 8 px)."""
    sizes = [(h, w)]
    for _ in range(octaves - 1):
        ph, pw = sizes[-1]
        nh, nw = round(ph / scale), round(pw / scale)
        if min(nh, nw) < 8:
            break
        sizes.append((nh, nw))
    return sizes[::-1]


def dream(backbone: Backbone, cfg: DreamConfig, pixels: torch.Tensor, seed: int,
          on_log=None) -> tuple[torch.Tensor, list[list[float]]]:
    """Dream on `pixels` (1,3,H,W, 0..255); returns the result's pixels and each octave's objective history."""
    dev = backbone.device
    precision = resolve_precision(cfg.precision, dev)
    gen = torch.Generator().manual_seed(int(seed))
    low, high = pixel_bounds(backbone, dev)
    objective = MeanSquaredActivation(cfg.dream_layer, cfg.channel)
    base = backbone.pre.to_net(pixels.to(dev).float())
    h, w = base.shape[-2:]
    detail = None
    histories: list[list[float]] = []
    x = base
    for oh, ow in octave_sizes(h, w, cfg.octaves, cfg.octave_scale):
        octave_base = base if (oh, ow) == (h, w) else F.interpolate(base, size=(oh, ow), mode="bilinear",
                                                                      align_corners=False)
        if detail is None:
            detail = torch.zeros_like(octave_base)
        else:
            detail = F.interpolate(detail, size=(oh, ow), mode="bilinear", align_corners=False)
        jitter = Jitter(min(cfg.jitter, oh // 2, ow // 2), gen, low, high)
        x0 = jitter.start(torch.maximum(torch.minimum(octave_base + detail, high), low))
        history: list[float] = []

        def log(done, total, rows, _h=history):
            _h.append(rows[0]["total"])
            if on_log is not None:
                on_log(done, total, rows)

        def on_step(info, _log=log, _jitter=jitter):
            _jitter(info.x, info.step)
            _log(info.evaluations, info.total, info.losses)

        options = RenderOptions(cfg.iterations, optimizer="normalized_sgd", lr=cfg.learning_rate,
                                precision=precision, log_every=1, maximize=True, compile=cfg.compile)
        result = render(backbone.net, objective, x0, options, on_step)
        x = jitter.finish(result.x)
        detail = x - octave_base
        histories.append(history)
    return backbone.pre.to_pixels(x).clamp(0, 255), histories


def zoom_in(pixels: torch.Tensor, zoom: float) -> torch.Tensor:
    """Crop the centre 1/(1+zoom) of the image and scale it back to full size."""
    h, w = pixels.shape[-2:]
    ch, cw = max(1, round(h / (1 + zoom))), max(1, round(w / (1 + zoom)))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = pixels[..., top:top + ch, left:left + cw]
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)


def dream_frames(backbone: Backbone, cfg: DreamConfig, pixels: torch.Tensor, seed: int,
                 on_log=None) -> list[torch.Tensor]:
    """The dream, then `zoom_frames` more: each zooms into the previous one and dreams again."""
    frame, _ = dream(backbone, cfg, pixels, seed, on_log)
    frames = [frame]
    for i in range(cfg.zoom_frames):
        frame, _ = dream(backbone, cfg, zoom_in(frames[-1], cfg.zoom), seed + i + 1, on_log)
        frames.append(frame)
    return frames


def encode_animation(images, fmt: str, frame_ms: int) -> bytes:
    """Animated GIF or WebP of PIL frames, looping forever."""
    import io

    buf = io.BytesIO()
    first, rest = images[0], list(images[1:])
    if fmt == "gif":
        first.save(buf, format="GIF", save_all=True, append_images=rest, duration=frame_ms, loop=0)
    else:
        first.save(buf, format="WEBP", save_all=True, append_images=rest, duration=frame_ms, loop=0,
                   quality=90)
    return buf.getvalue()
