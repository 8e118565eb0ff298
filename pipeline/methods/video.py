"""Style transfer for videos (Ruder, Dosovitskiy & Brox 2016): each frame from the previous one.

Frame 0 is stylized as `nst stylize` would (same objective, stages and start). Every
later frame t starts from the previous *output* warped into t by the input's optical
flow, and adds the short-term temporal loss

    temporal_weight · Σ_x c(x)·(x − warp(out_{t-1}))(x)² / (C·H·W)

with c the flow's reliability (0 at disocclusions and motion boundaries, smoothed;
pipeline/engine/flow.py). Same render loop, same per-sample L-BFGS; tensors in, tensors
out, no files. Where temporal_weight is 0 and warp_start is off, every frame is stylized
on its own (the per-frame baseline the warping error is compared with).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np
import torch
from PIL import Image

from pipeline.config import StyleConfig
from pipeline.engine.flow import FLOW_PRESETS, warp
from pipeline.engine.loop import RenderResult
from pipeline.engine.objectives import Temporal
from pipeline.engine.precision import resolve_precision
from pipeline.methods.stylize import (StyleTargets, StylizeJob, content_size, preserve_colors, render_stage,
                                      stylize_batch)
from pipeline.models.vgg import Backbone
from pipeline.schema import NonNegative, NonNegativeInt, Positive, PositiveInt, choice

FlowPreset = choice(*FLOW_PRESETS)


@dataclass
class VideoConfig(StyleConfig):
    """StyleConfig plus the temporal knobs. `iterations` is the first frame's budget,
    `later_iterations` every later frame's (None: the same)."""

    preset: ClassVar[str] = "video"

    temporal_weight: NonNegative = 4.0e+6
    warp_start: bool = True                 # later frames start from the warped previous output
    later_iterations: Optional[PositiveInt] = None
    fps: Optional[Positive] = None          # resample every clip to this rate (None: the stream's)
    max_frames: Optional[PositiveInt] = None
    flow_preset: FlowPreset = "medium"      # DIS preset (OpenCV)
    weight_radius: NonNegativeInt = 1       # box smoothing of the temporal weights, in pixels

    @property
    def temporal(self) -> bool:
        """False: every frame is stylized on its own (no flow needed)."""
        return self.temporal_weight > 0 or self.warp_start

    def frame_iterations(self, t: int) -> int:
        return self.iterations if t == 0 else (self.later_iterations or self.iterations)


@dataclass
class FrameResult:
    pixels: torch.Tensor      # (1, 3, H, W) 0..255
    result: RenderResult
    start: str                # "warped" or the config's init
    evaluations: int


def stylize_frame(backbone: Backbone, cfg: VideoConfig, targets: StyleTargets, t: int, content: Image.Image,
                  styles: list[tuple[str, Image.Image]], seed: int, previous: np.ndarray | None = None,
                  flow: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None, on_log=None) -> FrameResult:
    """Frame t of a clip (content at its working size). previous: the previous output (H, W, 3)
    uint8, as committed; flow: (backward flow t -> t-1, reliable mask, temporal weights) of the
    input frames. Without them (frame 0, a failed predecessor, or per-frame mode) the frame is
    stylized on its own, with `frame_iterations(t)` evaluations."""
    job = StylizeJob([content], styles, [seed])
    if previous is None or flow is None or not cfg.temporal:
        frame_cfg = dataclasses.replace(cfg, iterations=cfg.frame_iterations(t))
        pixels, result = stylize_batch(backbone, frame_cfg, targets, job, on_log=on_log)
        return FrameResult(pixels, result, cfg.init, result.evaluations)
    dev, pre = backbone.device, backbone.pre
    backward, _mask, weights = flow
    prev = torch.from_numpy(np.ascontiguousarray(previous, dtype=np.float32)).permute(2, 0, 1)[None].to(dev)
    # bicubic: frame after frame, a bilinear warp's blur would build up in the start and the target
    warped = pre.to_net(warp(prev, backward, mode="bicubic").clamp(0, 255))
    extra = []
    if cfg.temporal_weight > 0:
        c = torch.from_numpy(weights)[None, None].to(dev)
        extra.append(cfg.temporal_weight * Temporal(warped, c, pre.unit))
    x0 = warped.clone() if cfg.warp_start else None
    wh = content_size(content, cfg)
    pixels_in, result = render_stage(backbone, cfg, targets, job, wh, cfg.frame_iterations(t),
                               resolve_precision(cfg.precision, dev), x0, on_log, extra=extra)
    out = pre.to_pixels(result.x)
    if cfg.preserve_colors:
        out = preserve_colors(out, pixels_in)
    return FrameResult(out.clamp(0, 255), result, "warped" if cfg.warp_start else cfg.init, result.evaluations)


def content_frame(frame: np.ndarray) -> Image.Image:
    """A decoded frame (H, W, 3) uint8 as the PIL image the objective reads."""
    return Image.fromarray(np.ascontiguousarray(frame), "RGB")
