"""Shared fixtures: the real VGG16 (loaded once) and small synthetic images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def backbone():
    from pipeline.models.vgg import Backbone

    return Backbone("vgg16", pooling="max")


@pytest.fixture
def vgg(backbone):
    """The session's real VGG16 (max pooling) on one thread, for the method tests."""
    torch.set_num_threads(1)
    return backbone


def example_photo(name: str, size: int = 48):
    """A bundled public-domain photo, longest side `size`, as a (1, 3, H, W) 0..255 tensor."""
    from pipeline.io.images import load_image
    from pipeline.pixels import resize, target_size, to_tensor

    img = load_image(ROOT / "examples" / "content" / name)
    return to_tensor(resize(img, target_size(img.width, img.height, size)))


def make_image(size=(48, 40), seed=0, kind="content") -> Image.Image:
    """A deterministic picture with structure: a gradient with shapes, or a stripy 'style'."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    if kind == "content":
        base = np.stack([xx / w * 255, yy / h * 255, np.full_like(xx, 128.0)], -1)
        img = Image.fromarray(base.astype(np.uint8), "RGB")
        d = ImageDraw.Draw(img)
        for _ in range(3):
            x0, y0 = rng.integers(0, w // 2), rng.integers(0, h // 2)
            d.rectangle([x0, y0, x0 + w // 3, y0 + h // 3], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        return img
    stripes = (np.sin(xx / 2.0 + yy / 3.0 + seed) > 0)[..., None]
    colors = np.where(stripes, np.array([30, 60, 200]), np.array([240, 200, 40]))
    noise = rng.normal(0, 20, colors.shape)
    return Image.fromarray(np.clip(colors + noise, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture
def images(tmp_path):
    """Writes a content and a style image; returns their paths."""
    content = tmp_path / "content.png"
    style = tmp_path / "style.png"
    make_image((48, 40), 0, "content").save(content)
    make_image((40, 40), 1, "style").save(style)
    return content, style


def pytest_collection_modifyitems(config, items):
    """The end-to-end tier (tests/e2e: the real `nst` CLI in subprocesses) is marked `slow`."""
    for item in items:
        if "e2e" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.slow)
