"""Layer names of the VGG backbones, Keras style, with aliases.

`block4_conv2` is the output of that convolution after its ReLU (as in Keras);
`block4_pool` is the output of that block's pooling. Accepted aliases:
`relu4_2` / `conv4_2` (both mean the post-ReLU output) and `pool4`.
"""

from __future__ import annotations

import re

from pipeline.errors import BadInput

# Convolutions per block.
ARCHS: dict[str, tuple[int, ...]] = {
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}


def layer_sequence(arch: str) -> list[tuple[str, str]]:
    """The network's stages in order as (kind, name): kind is 'conv' or 'pool'."""
    seq: list[tuple[str, str]] = []
    for b, n in enumerate(ARCHS[arch], start=1):
        for c in range(1, n + 1):
            seq.append(("conv", f"block{b}_conv{c}"))
        seq.append(("pool", f"block{b}_pool"))
    return seq


def layer_names(arch: str) -> list[str]:
    if arch == "efficientnet-lite0":
        from pipeline.models.efficientnet import LAYERS

        return list(LAYERS)
    return [name for _, name in layer_sequence(arch)]


_ALIAS = re.compile(r"^(?:relu|conv)(\d+)_(\d+)$")
_POOL = re.compile(r"^pool(\d+)$")


def canonical_layer(name: str, arch: str = "vgg16") -> str:
    """Map a layer name or alias to its canonical Keras name, or raise BadInput."""
    raw = str(name).strip()
    m = _ALIAS.match(raw)
    if m:
        canon = f"block{m.group(1)}_conv{m.group(2)}"
    else:
        m = _POOL.match(raw)
        canon = f"block{m.group(1)}_pool" if m else raw
    if canon not in layer_names(arch):
        examples = ("stem, block0 .. block15, head or logits" if arch == "efficientnet-lite0"
                    else "block4_conv2, relu4_2, conv4_2 or pool4")
        raise BadInput(f"unknown layer name {raw!r} for {arch} (expected e.g. {examples})")
    return canon


def layer_index(name: str, arch: str = "vgg16") -> int:
    """Position of a canonical layer in the stage sequence (deeper = larger)."""
    return layer_names(arch).index(canonical_layer(name, arch))


def layer_width(name: str, arch: str = "vgg16") -> int:
    """Channels of a canonical layer (for EfficientNet-Lite0 `logits`: the 1000 classes)."""
    if arch == "efficientnet-lite0":
        from pipeline.models.efficientnet import layer_width as effnet_width

        return effnet_width(name)
    return (64, 128, 256, 512, 512)[int(name[5]) - 1]
