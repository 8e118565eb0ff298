"""ImageNet-1k class names and the classifier's view of an image.

Names come offline from torchvision's weights metadata (the same 1000 classes in
the same order as every ImageNet-1k classifier); nothing is downloaded.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from pipeline.errors import BadInput

CLASSIFIER_SIZE = 224


@lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    from torchvision.models import VGG16_Weights

    return tuple(VGG16_Weights.IMAGENET1K_V1.meta["categories"])


def resolve_class(spec: str | int) -> int:
    """A class index from an index ("543") or a name ("dumbbell", any case); BadInput otherwise."""
    names = class_names()
    text = str(spec).strip()
    if text.isdigit():
        index = int(text)
        if index < len(names):
            return index
        raise BadInput(f"class index {text} out of range 0..{len(names) - 1}")
    lowered = [n.lower() for n in names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    close = [n for n in names if text.lower() in n.lower()][:5]
    hint = f" (did you mean: {', '.join(close)})" if close else ""
    raise BadInput(f"unknown ImageNet class {text!r}{hint}")


def probabilities(net, pre, pixels: torch.Tensor, size: int = CLASSIFIER_SIZE) -> torch.Tensor:
    """Softmax over the 1000 classes of pixels (B, 3, H, W, 0..255), resized to size x size."""
    x = pixels.float()
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        return net(pre.to_net(x), ["logits"])["logits"].float().softmax(1)
