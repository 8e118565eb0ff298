"""Published probe values of the Keras ImageNet VGG16 weights.

Keras kernels are (kh, kw, in, out); PyTorch's are (out, in, kh, kw). Each probe
is (layer, 'kernel'|'bias', keras index, value).
"""

from __future__ import annotations

import torch

KERAS_VGG16_PROBES = [
    ("block1_conv1", "kernel", (0, 0, 0, 0), 0.42947057),
    ("block1_conv1", "bias", (25,), 0.7446502),
    ("block1_conv1", "bias", (0,), 0.73429835),
    ("block1_conv1", "bias", (1,), 0.093403675),
    ("block1_conv1", "bias", (2,), 0.06775674),
    ("block1_conv2", "kernel", (2, 2, 63, 63), 0.016082443),
    ("block2_conv1", "bias", (1,), 0.06440781),
    ("block5_conv1", "kernel", (1, 0, 63, 269), -0.011236359),
    ("block5_conv2", "bias", (510,), 0.23517226),
    ("block5_conv3", "kernel", (0, 2, 0, 400), -0.008714244),
]


def probe_value(state: dict[str, torch.Tensor], layer: str, what: str, index: tuple) -> float:
    if what == "bias":
        return float(state[f"{layer}.bias"][index])
    kh, kw, cin, cout = index
    return float(state[f"{layer}.weight"][cout, cin, kh, kw])


def check_keras_probes(state: dict[str, torch.Tensor]) -> None:
    """Raise ValueError if any probe differs (bitwise, as float32)."""
    for layer, what, index, expected in KERAS_VGG16_PROBES:
        got = probe_value(state, layer, what, index)
        if torch.tensor(got, dtype=torch.float32) != torch.tensor(expected, dtype=torch.float32):
            raise ValueError(f"probe {layer} {what}{list(index)} = {got}, expected {expected}")
