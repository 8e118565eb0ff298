"""Optical flow between input frames, warping by it, and where it can be trusted (Ruder et al. 2016).

Why one module: the video method (temporal loss, warped start) and the warping-error
metric must read flow, warps and reliability the same way. Pure arrays in, arrays
out, no files.

Conventions. A flow f from frame a to frame b is (H, W, 2) float32 in pixels, (dx, dy)
per pixel of a: the pixel at x in a is at x + f(x) in b. `warp(image_b, f)` pulls b back
onto a's grid (image_b sampled at x + f(x), bilinear, edges clamped), so for frame t
and its predecessor, `warp(previous, flow(t -> t-1))` is the previous frame seen from t.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

FLOW_PRESETS = ("ultrafast", "fast", "medium")


def gray(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 luma, what DIS reads."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def optical_flow(a: np.ndarray, b: np.ndarray, preset: str = "medium") -> np.ndarray:
    """DIS optical flow (Kroeger et al. 2016, OpenCV) from RGB frame a to RGB frame b: (H, W, 2) float32."""
    import cv2

    if preset not in FLOW_PRESETS:
        raise ValueError(f"flow preset must be one of {', '.join(FLOW_PRESETS)}, got {preset!r}")
    dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset.upper()}"))
    return dis.calc(gray(a), gray(b), None).astype(np.float32)


def _as_flow(flow) -> torch.Tensor:
    return flow if isinstance(flow, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(flow))


def warp(image: torch.Tensor, flow, mode: str = "bilinear") -> torch.Tensor:
    """image (B, C, H, W) sampled at x + flow(x) (bilinear, or bicubic: sharper, for an image
    warped again and again; coordinates clamped to the frame)."""
    f = _as_flow(flow).to(image.device, torch.float32)
    h, w = f.shape[:2]
    ys, xs = torch.meshgrid(torch.arange(h, device=f.device, dtype=torch.float32),
                            torch.arange(w, device=f.device, dtype=torch.float32), indexing="ij")
    gx = (xs + f[..., 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + f[..., 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], -1).unsqueeze(0).expand(image.shape[0], -1, -1, -1)
    out = F.grid_sample(image.float(), grid, mode=mode, padding_mode="border", align_corners=True)
    return out.to(image.dtype)


def warp_array(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`warp` for one (H, W, C) array; returns float32."""
    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    return warp(t, flow)[0].permute(1, 2, 0).numpy()


def reliable(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Ruder's consistency check for the pixels of frame t: bool (H, W), False where the flow fails.

    forward: flow(t-1 -> t); backward: flow(t -> t-1). A pixel is unreliable where
    - it was occluded in t-1 (disocclusion): the forward flow, read where the backward
      flow points, does not come back: |w + ŵ|² > 0.01(|w|² + |ŵ|²) + 0.5;
    - it lies on a motion boundary: |∇u|² + |∇v|² > 0.01|ŵ|² + 0.002 (u, v: ŵ's components).
    """
    back = np.asarray(backward, dtype=np.float32)
    w = warp_array(forward, back)              # forward flow at x + ŵ(x)
    total = w + back
    disoccluded = (total ** 2).sum(-1) > 0.01 * ((w ** 2).sum(-1) + (back ** 2).sum(-1)) + 0.5
    grad = np.zeros(back.shape[:2], np.float32)
    for c in range(2):
        gy, gx = np.gradient(back[..., c])
        grad += gx ** 2 + gy ** 2
    boundary = grad > 0.01 * (back ** 2).sum(-1) + 0.002
    return ~(disoccluded | boundary)


def temporal_weights(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """The per-pixel weight of the temporal loss: 0 where `mask` is False, elsewhere the mask
    box-smoothed over (2·radius+1)² pixels, so the weight fades towards unreliable regions
    instead of stepping from 1 to 0. float32 (H, W) in [0, 1]."""
    m = torch.from_numpy(mask.astype(np.float32))[None, None]
    k = 2 * radius + 1
    smooth = F.avg_pool2d(F.pad(m, (radius,) * 4, mode="replicate"), k, stride=1)[0, 0].numpy()
    return (smooth * mask).astype(np.float32)


def warping_error(current: np.ndarray, previous: np.ndarray, backward: np.ndarray, mask: np.ndarray) -> float:
    """Lai et al. (ECCV 2018): Σ_x M(x)·‖O_t(x) − warp(O_{t-1})(x)‖² / Σ_x M(x), frames in [0, 1]
    (uint8 RGB in), ‖·‖² over the channels; the flow and mask are the *input's*. NaN if the
    mask is empty."""
    cur = np.asarray(current, np.float32) / 255.0
    warped = warp_array(np.asarray(previous, np.float32) / 255.0, backward)
    m = np.asarray(mask, np.float32)
    if m.sum() == 0:
        return float("nan")
    return float((m * ((cur - warped) ** 2).sum(-1)).sum() / m.sum())


class ClipFlow:
    """Flows, reliability and weights between consecutive frames of one clip, each pair computed once
    (on first use) and kept: frame t's entry is about the pixels of t and frame t-1."""

    def __init__(self, frames: list[np.ndarray], preset: str = "medium", radius: int = 1):
        self.frames, self.preset, self.radius = frames, preset, radius
        self._pairs: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __call__(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(backward flow t -> t-1, reliable mask, temporal weights) for frame t >= 1."""
        if t < 1 or t >= len(self.frames):
            raise IndexError(f"frame {t} has no predecessor in a clip of {len(self.frames)}")
        if t not in self._pairs:
            a, b = self.frames[t - 1], self.frames[t]
            forward, backward = optical_flow(a, b, self.preset), optical_flow(b, a, self.preset)
            mask = reliable(forward, backward)
            self._pairs[t] = (backward, mask, temporal_weights(mask, self.radius))
        return self._pairs[t]
