"""VGG feature extractor that stops at the deepest layer a loss needs.

One module serves every method: it returns the activations of the requested
layers (Keras names, post-ReLU for convolutions) and can record max-pooling
switches for the deconvnet.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.layers import canonical_layer, layer_sequence
from pipeline.models.preprocess import Preprocess
from pipeline.models.weights import backbone_spec, load_backbone_state


class VGGFeatures(nn.Module):
    """VGG convolutional stack with selectable pooling ('max' or 'avg')."""

    def __init__(self, arch: str, state: dict[str, torch.Tensor], pooling: str = "max"):
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        self.arch = arch
        self.pooling = pooling
        self.stages = layer_sequence(arch)
        self.convs = nn.ModuleDict()
        for kind, name in self.stages:
            if kind == "conv":
                w = state[f"{name}.weight"]
                conv = nn.Conv2d(w.shape[1], w.shape[0], kernel_size=3, padding=1)
                conv.weight.data.copy_(w)
                conv.bias.data.copy_(state[f"{name}.bias"])
                self.convs[name] = conv
        self.requires_grad_(False)
        self.eval()
        self._lowp: dict = {}  # (layer, dtype, layout) -> (source key, weight, bias) in that dtype

    def _weights_in(self, name: str, dtype: torch.dtype, layout: torch.memory_format) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's weight and bias cast to `dtype` (weight in `layout`) once, not at every call.

        Autocast caches its casts only for leaf tensors that require grad; the network's
        weights are frozen, so under bf16 autocast every forward cast all of them again,
        and a channels_last input made the convolution reorder the weight again in the
        forward and in the backward (together 10% of an evaluation at 128 px on a CPU).
        The copy is remade if the weights are moved or edited (device, storage or
        version change).
        """
        conv = self.convs[name]
        source = (conv.weight.device, conv.weight.data_ptr(), conv.weight._version, conv.bias._version)
        hit = self._lowp.get((name, dtype, layout))
        if hit is None or hit[0] != source:
            weight = conv.weight.detach().to(dtype).contiguous(memory_format=layout)
            hit = (source, weight, conv.bias.detach().to(dtype))
            self._lowp[(name, dtype, layout)] = hit
        return hit[1], hit[2]

    def _conv(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """conv + ReLU; under autocast with the weights held in its dtype (same values as autocast's cast)."""
        conv = self.convs[name]
        device = x.device.type
        if torch.compiler.is_compiling() or not torch.is_autocast_enabled(device):
            return F.relu(conv(x))  # eager fp32, or inductor (which fuses the casts itself)
        dtype = torch.get_autocast_dtype(device)
        if dtype == conv.weight.dtype:
            return F.relu(conv(x))
        cl = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        w, b = self._weights_in(name, dtype, torch.channels_last if cl else torch.contiguous_format)
        return F.relu(F.conv2d(x.to(dtype), w, b, padding=1))

    def canonical(self, names) -> list[str]:
        return [canonical_layer(n, self.arch) for n in names]

    def deepest_index(self, names) -> int:
        order = [n for _, n in self.stages]
        return max(order.index(n) for n in self.canonical(names))

    def forward(self, x: torch.Tensor, layers, switches: dict | None = None) -> dict[str, torch.Tensor]:
        """Activations of `layers`; runs only up to the deepest of them.

        If `switches` is a dict, max-pool argmax indices are stored in it by pool name.
        """
        wanted = set(self.canonical(layers))
        stop = self.deepest_index(wanted)
        out: dict[str, torch.Tensor] = {}
        for i, (kind, name) in enumerate(self.stages[: stop + 1]):
            if kind == "conv":
                x = self._conv(name, x)
            elif self.pooling == "avg":
                x = F.avg_pool2d(x, 2)
            elif switches is not None:
                x, idx = F.max_pool2d(x, 2, return_indices=True)
                switches[name] = idx
            else:
                x = F.max_pool2d(x, 2)
            if name in wanted:
                out[name] = x
        return out

    def macs_per_pixel(self, layers) -> int:
        """Multiply-adds per input pixel of one forward pass up to the deepest layer."""
        stop = self.deepest_index(layers)
        scale, total = 1.0, 0
        for kind, name in self.stages[: stop + 1]:
            if kind == "conv":
                conv = self.convs[name]
                total += int(conv.in_channels * conv.out_channels * 9 * scale)
            else:
                scale /= 4.0
        return total


class Backbone:
    """A loaded network plus its preprocessing and provenance."""

    def __init__(self, name: str = "vgg16", pooling: str = "max", weights_file=None, device="cpu"):
        spec = backbone_spec(name)
        state, meta = load_backbone_state(name, weights_file)
        self.name = name
        self.spec = spec
        self.meta = meta
        self.weights_digest = meta["state_digest"]
        if spec.arch == "efficientnet-lite0":
            from pipeline.models.efficientnet import EfficientNetLite0

            self.net = EfficientNetLite0(state).to(device)
        else:
            self.net = VGGFeatures(spec.arch, state, pooling).to(device)
        self.pre = Preprocess(spec.preprocessing)
        self.device = torch.device(device)
        if self.device.type == "cuda":
            # Every image of a size bucket has the same shapes: let cuDNN time its
            # convolution algorithms once per shape instead of using its heuristics.
            torch.backends.cudnn.benchmark = True

    @property
    def arch(self) -> str:
        return self.spec.arch
