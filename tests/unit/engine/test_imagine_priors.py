"""The image priors and objectives of `nst imagine`, each on its own (fast, CPU)."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.engine.objectives import (IMAGE, CentreNeuron, ChannelMean, ClassLogit, Diversity,
                                        ImageTotalVariation)
from pipeline.engine.param import ImageParam
from pipeline.engine.transforms import Robustness, gaussian_blur, random_view, scale_rotate
from pipeline.methods.quality import spectrum_slope
from image_checks import random_crop


@pytest.mark.parametrize("kind", ["fourier", "pixel"])
@pytest.mark.parametrize("decorrelate", [True, False])
def test_encode_inverts_decode(kind, decorrelate):
    param = ImageParam((20, 18), kind=kind, decorrelate=decorrelate)
    image = torch.rand(2, 3, 20, 18) * 0.9 + 0.05
    back = param.decode(param.encode(image))
    assert back.shape == image.shape
    assert torch.allclose(back, image, atol=1e-4)


def test_fourier_noise_is_pink_and_pixel_noise_is_white():
    """Equal random spectra through 1/f scaling give an image with a photo-like spectrum."""
    gen = torch.Generator().manual_seed(0)
    fourier = ImageParam((128, 128), init_std=1.0)
    pixel = ImageParam((128, 128), kind="pixel", init_std=1.0)
    assert -2.4 < spectrum_slope(fourier.decode(fourier.init(1, gen))) < -1.6
    assert abs(spectrum_slope(pixel.decode(pixel.init(1, gen)))) < 0.3


def test_spectrum_slope_of_known_images():
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    step = (xx > 31).float().expand(3, 64, 64)  # one edge: power ~ 1/f^2 along one axis
    assert spectrum_slope(step) < -1.5
    white = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1))
    assert abs(spectrum_slope(white)) < 0.3


def test_random_view_is_seeded_and_differentiable():
    x = torch.rand(2, 3, 40, 40, requires_grad=True)
    r = Robustness(pad=6, jitter=4, scale=0.1, rotate=10.0, blur=1.0)
    a = random_view(x, r, torch.Generator().manual_seed(5))
    b = random_view(x, r, torch.Generator().manual_seed(5))
    c = random_view(x, r, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and a.shape[0] == 2
    assert a.shape != c.shape or not torch.equal(a, c)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_scale_rotate_identity_and_turn():
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(scale_rotate(x, 1.0, 0.0), x)
    turned = scale_rotate(x, 1.0, 90.0)
    assert torch.allclose(turned, torch.rot90(x, 1, dims=(2, 3)), atol=1e-4) or \
        torch.allclose(turned, torch.rot90(x, -1, dims=(2, 3)), atol=1e-4)


def test_blur_keeps_mean_and_lowers_variation():
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    y = gaussian_blur(x, 1.5)
    assert y.shape == x.shape
    assert abs(float(y.mean() - x.mean())) < 0.02
    assert float(ImageTotalVariation().parts({IMAGE: y}, None)["tv"]) < \
        0.5 * float(ImageTotalVariation().parts({IMAGE: x}, None)["tv"])


def test_objectives_pick_each_samples_target():
    logits = torch.arange(2 * 5, dtype=torch.float32).view(2, 5)
    assert ClassLogit(torch.tensor([1, 4])).parts({"logits": logits}, None)["class"].tolist() == [1.0, 9.0]
    acts = torch.zeros(2, 3, 5, 5)
    acts[0, 2] = 1.0
    acts[1, 0, 2, 2] = 25.0
    mean = ChannelMean("l", torch.tensor([2, 0])).parts({"l": acts}, None)["channel"]
    assert mean.tolist() == [1.0, 1.0]
    centre = CentreNeuron("l", torch.tensor([2, 0])).parts({"l": acts}, None)["neuron"]
    assert centre.tolist() == [1.0, 25.0]


def test_diversity_rewards_a_batch_that_differs():
    same = torch.rand(1, 4, 6, 6).expand(3, 4, 6, 6).contiguous()
    differ = torch.rand(3, 4, 6, 6, generator=torch.Generator().manual_seed(3))
    differ[0, :2] = 0  # a different Gram matrix
    d_same = Diversity("l").parts({"l": same}, None)["diversity"]
    d_differ = Diversity("l").parts({"l": differ}, None)["diversity"]
    assert torch.allclose(d_same, torch.full((3,), -1.0), atol=1e-5)
    assert bool((d_differ > d_same).all())


def test_random_crop_rescales_to_the_same_size():
    x = torch.rand(1, 3, 50, 40)
    y = random_crop(x, 0.1, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.equal(y, x)
    assert math.isfinite(float(y.sum()))


@pytest.mark.parametrize("kw, needle", [
    ({"classes": ["1000"]}, "1000"),
    ({"layer": "block4_conv3", "channels": "a-b"}, "a-b"),
    ({"layer": "block4_conv3"}, "--channels"),
    ({"layer": "block9_conv1", "channels": "0-3"}, "block9_conv1"),
    ({"classes": ["dumbbell"], "layer": "block4_conv3", "channels": "0-3"}, "not both"),
    ({}, "not both"),
    ({"classes": ["dumbbell"], "network": "vgg16"}, "no classifier head"),
    ({"layer": "head", "channels": "0-1279", "network": "efficientnet-lite0", "scale": 1.5}, "scale"),
])
def test_config_rejects_bad_targets_and_settings(kw, needle):
    from pipeline.config import build_config
    from pipeline.errors import BadInput
    from pipeline.methods.imagine import ImagineConfig

    with pytest.raises(BadInput, match=needle.replace("-", r"\-")):
        build_config(ImagineConfig, preset="imagine", overrides=kw)


def test_config_resolves_targets_and_networks():
    from pipeline.config import build_config
    from pipeline.methods.imagine import ImagineConfig, parse_channels

    c = build_config(ImagineConfig, preset="imagine", overrides={"classes": ["dumbbell", "1", "Volcano"]})
    assert c.classes == [543, 1, 980] and c.network == "efficientnet-lite0"
    v = build_config(ImagineConfig, preset="imagine", overrides={"layer": "relu4_3", "channels": "0-2,5"})
    assert v.layer == "block4_conv3" and v.channels == [0, 1, 2, 5] and v.network == "vgg16"
    e = build_config(ImagineConfig, preset="imagine",
                     overrides={"layer": "block15", "channels": "0-319", "network": "efficientnet-lite0"})
    assert len(e.channels) == 320
    assert parse_channels("3") == [3]


@pytest.mark.parametrize("name", ["channel", "neuron", "diversity", "tv"])
def test_each_term_moves_the_right_way_through_the_parameterisation(vgg, name):
    """A few Adam steps on a Fourier parameterisation raise each reward (lower TV): the gradient
    reaches p through decode and the network, with the right sign."""
    from pipeline.engine.loop import RenderOptions, evaluate, render
    from pipeline.engine.param import ParamNet

    gen = torch.Generator().manual_seed(0)
    param = ImageParam((32, 32), init_std=0.5)
    net = ParamNet(vgg.net, vgg.pre, param, Robustness(0, 0, 0.0, 0.0, 0.0), gen)
    layer = "block2_conv1"
    term, sign = {"channel": (ChannelMean(layer, torch.tensor([3, 7])), 1.0),
                  "neuron": (CentreNeuron(layer, torch.tensor([3, 7])), 1.0),
                  "diversity": (Diversity(layer), 1.0),
                  "tv": (ImageTotalVariation(), -1.0)}[name]
    p0 = param.init(2, gen)

    def value(p):
        return float(sum(v.sum() for v in evaluate(net, term, p, "fp32").values()))

    result = render(net, term, p0, RenderOptions(8, optimizer="adam", lr=0.05, log_every=8, maximize=sign > 0))
    assert sign * value(result.x) > sign * value(p0), name


def test_imagine_renders_a_diverse_batch_of_channels(vgg):
    """The whole method on VGG16 channels at 32 px: a batch of two with the diversity term, two octaves."""
    from pipeline.config import build_config
    from pipeline.methods.imagine import ImagineConfig, imagine

    cfg = build_config(ImagineConfig, preset="imagine", overrides={
        "layer": "block3_conv1", "channels": "0-1", "size": 32, "iterations": 3, "diversity_weight": 1.0})
    assert cfg.diversity_layer == "block4_conv1" and cfg.octaves == 2
    pixels, result = imagine(vgg, cfg, cfg.channels, seed=1)
    assert pixels.shape == (2, 3, 32, 32) and 0 <= float(pixels.min()) and float(pixels.max()) <= 255
    assert set(result.losses[0]) == {"channel", "diversity", "total"} and result.evaluations == 3
