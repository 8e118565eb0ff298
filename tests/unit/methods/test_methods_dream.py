"""DeepDream with the real VGG16: the objective rises, the image stays valid, a seed repeats."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.config import build_config
from pipeline.errors import BadInput
from pipeline.pixels import to_pil
from pipeline.methods.dream import DreamConfig, dream, dream_frames, encode_animation, octave_sizes
from tests.conftest import example_photo

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def photo():
    return example_photo("coffee.jpg")


def cfg(**kw):
    return build_config(DreamConfig, preset="dream", overrides={"size": 48, "iterations": 12, "octaves": 2, **kw})


def test_objective_rises_and_image_stays_valid(vgg, photo):
    out, histories = dream(vgg, cfg(), photo, seed=3)
    assert len(histories) == 2 and all(len(h) == 12 for h in histories)
    for h in histories:
        h = np.array(h)
        assert h[len(h) // 2:].mean() > h[: len(h) // 2].mean()  # rises on average
        assert h[-1] > h[0]
        # jitter makes single steps noisy; the least-squares trend is upward
        assert np.polyfit(np.arange(len(h)), h, 1)[0] > 0
    assert out.shape == photo.shape
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 255
    assert (out - photo).abs().mean() > 1.0  # it changed the picture


def test_fixed_seed_repeats_and_other_seed_differs(vgg, photo):
    c = cfg(iterations=4)
    a, _ = dream(vgg, c, photo, seed=5)
    b, _ = dream(vgg, c, photo, seed=5)
    d, _ = dream(vgg, c, photo, seed=6)
    assert torch.equal(a, b)
    assert not torch.equal(a, d)


def test_one_channel_is_amplified_more_than_the_layer_average(vgg, photo):
    c = cfg(iterations=8, octaves=1, dream_layer="block3_conv1", channel=7)
    out, _ = dream(vgg, c, photo, seed=0)
    with torch.no_grad():
        before = vgg.net(vgg.pre.to_net(photo), ["block3_conv1"])["block3_conv1"][0]
        after = vgg.net(vgg.pre.to_net(out), ["block3_conv1"])["block3_conv1"][0]
    gain = after.pow(2).mean((1, 2)) / before.pow(2).mean((1, 2)).clamp_min(1e-6)
    assert gain[7] > gain.median() * 2


def test_zoom_frames_and_animation(vgg, photo):
    c = cfg(iterations=2, octaves=1, zoom_frames=2)
    frames = dream_frames(vgg, c, photo, seed=1)
    assert len(frames) == 3 and all(f.shape == photo.shape for f in frames)
    data = encode_animation([to_pil(f) for f in frames], "gif", 80)
    gif = Image.open(io.BytesIO(data))
    assert gif.n_frames == 3


def test_octave_sizes_and_bad_values():
    assert octave_sizes(100, 60, 3, 2.0) == [(25, 15), (50, 30), (100, 60)]
    assert octave_sizes(20, 20, 5, 2.0) == [(10, 10), (20, 20)]  # stops above 8 px
    with pytest.raises(BadInput, match="octave_scale"):
        cfg(octave_scale=1.0)
    with pytest.raises(BadInput, match="0..255 for block3_conv1"):
        cfg(dream_layer="block3_conv1", channel=256)
    with pytest.raises(BadInput, match="unknown layer"):
        cfg(dream_layer="block9_conv1")
