"""Texture synthesis with the real VGG16: the Gram loss falls from noise, seeds differ, size is free."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config import build_config
from pipeline.engine.loop import evaluate
from pipeline.errors import BadInput
from pipeline.io.images import load_image
from pipeline.models.vgg import Backbone
from pipeline.methods.texture import TextureConfig, match_histogram, synthesize, texture_objective, texture_targets

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "examples" / "style" / "starry_night.jpg"


@pytest.fixture(scope="module")
def avg_backbone():
    torch.set_num_threads(1)
    return Backbone("vgg16", pooling="avg")


def cfg(**kw):
    return build_config(TextureConfig, preset="texture", overrides={"size": 64, **kw})


@pytest.mark.slow  # 6 s of synthesis: not in `make test-fast`
def test_style_loss_falls_100x_from_noise(avg_backbone):
    c = cfg(iterations=100)
    source = load_image(SOURCE)
    objective = texture_objective(c, texture_targets(avg_backbone, c, "starry", source))
    x0 = avg_backbone.pre.noise((1, 3, 64, 64), torch.Generator().manual_seed(7))
    start = float(evaluate(avg_backbone.net, objective, x0, "fp32")["style"][0])
    pixels, result = synthesize(avg_backbone, c, "starry", source, 7)
    end = result.losses[0]["style"]
    assert start / end >= 100, f"style loss fell only {start / end:.1f}x ({start:.3e} -> {end:.3e})"
    assert pixels.shape == (1, 3, 64, 64)
    assert torch.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 255


def test_two_seeds_give_different_textures_and_one_seed_repeats(avg_backbone):
    c = cfg(iterations=15, size=32)
    source = load_image(SOURCE)
    a, _ = synthesize(avg_backbone, c, "starry", source, 1)
    b, _ = synthesize(avg_backbone, c, "starry", source, 2)
    a2, _ = synthesize(avg_backbone, c, "starry", source, 1)
    assert (a - b).abs().mean() > 10.0  # grey levels: different images, not rounding noise
    assert torch.equal(a, a2)


def test_output_size_is_free_of_the_source_size(avg_backbone):
    c = cfg(iterations=3, size=32, width=48, height=24)
    pixels, result = synthesize(avg_backbone, c, "starry", load_image(SOURCE), 0)
    assert pixels.shape == (1, 3, 24, 48)
    assert np.isfinite(result.losses[0]["style"])


def test_histogram_matching_takes_the_source_colour_distribution():
    rng = np.random.default_rng(0)
    from PIL import Image

    src = Image.fromarray(rng.integers(100, 200, (20, 20, 3)).astype(np.uint8), "RGB")
    pixels = torch.rand(1, 3, 16, 16) * 255
    out = match_histogram(pixels, src)
    s = np.asarray(src, dtype=np.float32).reshape(-1, 3)
    for ch in range(3):
        o = out[0, ch].flatten().numpy()
        assert abs(o.mean() - s[:, ch].mean()) < 2 and o.min() >= 100 and o.max() <= 199
        # ranks are kept: sorted by the input's values, the output never decreases
        order = np.argsort(pixels[0, ch].flatten().numpy())
        assert np.all(np.diff(o[order]) >= 0)


def test_bad_settings_name_the_value():
    with pytest.raises(BadInput, match="count"):
        cfg(count=0)
    with pytest.raises(BadInput, match="width"):
        cfg(width=3)
