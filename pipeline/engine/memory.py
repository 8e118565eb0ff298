"""What one image costs in memory, and what the device has: the estimate batching and tiling share.

A leaf under batching.py (batch sizes, check_fits) and tile_plan.py (tile sizes), so neither imports the other's
module for it.
"""

from __future__ import annotations

import torch


def free_bytes(device: torch.device | str) -> int:
    """Memory this process could still allocate: CUDA free + cached-unused, or the host's MemAvailable."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached)
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


BLOCK_WIDTHS = (64, 128, 256, 512, 512)  # output channels of each VGG block's convolutions


def activation_channels_per_pixel(net, layers) -> float:
    """Σ over the convolutions run of out_channels × (layer pixels / input pixels).
    `net` is a VGGFeatures or just its architecture's name ('vgg16'): no weights are needed."""
    from pipeline.models.layers import layer_index, layer_sequence

    arch = net if isinstance(net, str) else net.arch
    stop = max(layer_index(name, arch) for name in layers)
    scale, total = 1.0, 0.0
    for kind, name in layer_sequence(arch)[: stop + 1]:
        if kind == "conv":
            total += BLOCK_WIDTHS[int(name[5]) - 1] * scale
        else:
            scale /= 4.0
    return total


def bytes_per_image(net, layers, width: int, height: int, precision: str, history: int) -> int:
    """Estimated peak bytes for one image: saved activations (about 4 copies of each
    layer's output: conv output, ReLU output, their gradients; 2 bytes under bf16,
    4 in fp32), the L-BFGS history (2·history fp32 vectors of the image), and the
    image, its gradient and the optimiser's few working vectors (8 fp32 copies).
    It errs on the safe side of what was measured (docs/speed.md)."""
    px = width * height
    elt = 2 if precision == "bf16" else 4
    acts = 4 * elt * activation_channels_per_pixel(net, layers)
    return int(px * (acts + 2 * history * 3 * 4 + 8 * 3 * 4))
