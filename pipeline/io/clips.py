"""A clip made from a still: a slow pan and zoom over a photo (tests, the benchmark, the README).

Why: a known, license-clean moving input whose motion is smooth and whose every frame
is a real photograph's texture, so optical flow has something true to find.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def pan_zoom(image: Image.Image, frames: int, wh: tuple[int, int], zoom: float = 1.25,
             pan: tuple[float, float] = (0.15, 0.05)) -> list[np.ndarray]:
    """`frames` RGB frames of size wh: a window with wh's aspect, covering the image's height at
    frame 0 and 1/zoom of it at the last, its centre moving by `pan` (fractions of the image's
    width and height) from a start left of centre. Sub-pixel crops, Lanczos resampling."""
    img = image.convert("RGB")
    w_img, h_img = img.size
    aspect = wh[0] / wh[1]
    out = []
    for i in range(frames):
        s = i / max(frames - 1, 1)
        h = min(h_img, w_img / aspect) / (1 + (zoom - 1) * s)
        w = h * aspect
        cx = w_img * (0.5 - pan[0] / 2 + pan[0] * s)
        cy = h_img * (0.5 - pan[1] / 2 + pan[1] * s)
        cx = min(max(cx, w / 2), w_img - w / 2)
        cy = min(max(cy, h / 2), h_img - h / 2)
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        out.append(np.asarray(img.resize(wh, Image.Resampling.LANCZOS, box=box)))
    return out
