"""Zeiler & Fergus deconvnet: project one activation back into pixel space.

Keep a single activation of a layer (all others zero) and walk the stages in
reverse: unpool with the switches max pooling recorded in the forward pass,
rectify, and filter with the transposed convolution (the same filters,
flipped). Needs max pooling. Also: the receptive field of a position, for
cropping the matching image patch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.models.vgg import VGGFeatures


def _stages_to(net: VGGFeatures, layer: str) -> list[tuple[str, str]]:
    layer = net.canonical([layer])[0]
    order = [n for _, n in net.stages]
    return net.stages[: order.index(layer) + 1]


def forward_with_switches(net: VGGFeatures, x: torch.Tensor, layer: str):
    """Activation of `layer`, the pooling switches and each pool's input size."""
    if net.pooling != "max":
        raise ValueError("the deconvnet needs max pooling (switches); build the backbone with pooling='max'")
    switches: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        act = net(x, [layer], switches=switches)[net.canonical([layer])[0]]
    sizes: dict[str, tuple[int, int]] = {}
    h, w = x.shape[-2:]
    for kind, name in _stages_to(net, layer):
        if kind == "pool":
            sizes[name] = (h, w)
            h, w = h // 2, w // 2
    return act, switches, sizes


def project_down(net: VGGFeatures, layer: str, signal: torch.Tensor, switches: dict, sizes: dict) -> torch.Tensor:
    """Deconvnet pass from `layer`'s output space to input space (network units)."""
    m = signal
    with torch.no_grad():
        for kind, name in reversed(_stages_to(net, layer)):
            if kind == "pool":
                m = F.max_unpool2d(m, switches[name], 2, output_size=sizes[name])
            else:
                conv = net.convs[name]
                m = F.conv_transpose2d(F.relu(m), conv.weight, padding=1)
    return m


def receptive_field(net: VGGFeatures, layer: str) -> tuple[int, int, float]:
    """(size, stride, offset): position p of `layer` sees input pixels centred on offset + p·stride."""
    size, stride, offset = 1, 1, 0.0
    for kind, _ in _stages_to(net, layer):
        if kind == "conv":
            size += 2 * stride
        else:
            size += stride
            offset += 0.5 * stride
            stride *= 2
    return size, stride, offset


def receptive_box(net: VGGFeatures, layer: str, y: int, x: int, hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the input region position (y, x) sees, clipped to the image."""
    size, stride, offset = receptive_field(net, layer)
    h, w = hw
    cy, cx = offset + y * stride, offset + x * stride
    half = (size - 1) / 2
    top, left = max(0, int(round(cy - half))), max(0, int(round(cx - half)))
    bottom, right = min(h, int(round(cy + half)) + 1), min(w, int(round(cx + half)) + 1)
    return top, left, bottom, right
