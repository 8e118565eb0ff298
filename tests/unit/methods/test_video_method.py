"""The video method (pipeline/methods/video.py) on the real VGG16 at 32 px: the temporal term and the
warped start pull a frame towards the previous output; per-frame mode ignores it."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from conftest import make_image
from pipeline.engine.objectives import Temporal
from pipeline.methods.stylize import StyleTargets
from pipeline.methods.video import stylize_frame


def test_temporal_term_is_the_weighted_pixel_mse_and_ignores_unreliable_pixels():
    target = torch.zeros(1, 3, 4, 5)
    weights = torch.ones(1, 1, 4, 5)
    weights[..., :2] = 0
    x = torch.full((1, 3, 4, 5), 2.0, requires_grad=True)
    value = Temporal(target, weights, unit=1.0).parts({}, x)["temporal"]
    assert torch.allclose(value, torch.tensor([4.0 * 3 * 4 * 3 / 60]))  # 36 of 60 values weigh 1, each 2²
    value.sum().backward()
    assert (x.grad[..., :2] == 0).all() and (x.grad[..., 2:] > 0).all()
    # in network units of another preprocessing (unit u), the same pixel error gives the same value
    assert torch.allclose(Temporal(target, weights, unit=0.5).parts({}, x.detach() * 0.5)["temporal"], value)


def _setup(vgg, **over):
    from pipeline.tasks.registry import method_config

    # the video preset's weights (mean-reduced terms), from the content, one full-size stage
    cfg = method_config("video", "video", {"size": 32, "iterations": 6, "init": "content", "coarse_stages": [],
                                           "precision": "fp32", "compile": "none", "later_iterations": 6, **over})
    content = make_image((32, 24), 0, "content")
    styles = [("s", make_image((32, 32), 1, "style"))]
    previous = np.asarray(make_image((32, 24), 3, "content"))  # any earlier output
    still = (np.zeros((24, 32, 2), np.float32), np.ones((24, 32), bool), np.ones((24, 32), np.float32))
    return cfg, StyleTargets(vgg, cfg), content, styles, previous, still


def _distance(pixels: torch.Tensor, previous: np.ndarray) -> float:
    """Mean squared pixel distance to the previous output (what the temporal term weighs)."""
    return float((pixels[0].permute(1, 2, 0).cpu() - torch.from_numpy(previous.copy()).float()).pow(2).mean())


def test_the_temporal_loss_and_the_warped_start_keep_a_frame_near_the_previous_output(vgg):
    cfg, targets, content, styles, previous, still = _setup(vgg, temporal_weight=0.0, warp_start=False,
                                                            iterations=20, later_iterations=20)
    alone = stylize_frame(vgg, cfg, targets, 1, content, styles, 7, previous, still)
    # a temporal weight that dominates the other terms: the frame goes towards the previous output
    pulled = stylize_frame(vgg, dataclasses.replace(cfg, temporal_weight=1e9), targets, 1, content, styles, 7,
                           previous, still)
    assert pulled.start == "content" and "temporal" in pulled.result.losses[0]
    assert _distance(pulled.pixels, previous) < 0.85 * _distance(alone.pixels, previous)
    warped = stylize_frame(vgg, dataclasses.replace(cfg, warp_start=True, later_iterations=2), targets, 1, content,
                           styles, 7, previous, still)
    assert warped.start == "warped" and warped.evaluations >= 2
    assert _distance(warped.pixels, previous) < 0.1 * _distance(alone.pixels, previous)


def test_per_frame_mode_and_frame_zero_ignore_the_previous_output(vgg):
    cfg, targets, content, styles, previous, still = _setup(vgg, temporal_weight=0.0, warp_start=False,
                                                            later_iterations=3)
    with_prev = stylize_frame(vgg, cfg, targets, 1, content, styles, 7, previous, still)
    without = stylize_frame(vgg, cfg, targets, 1, content, styles, 7, None, None)
    assert torch.equal(with_prev.pixels, without.pixels) and with_prev.evaluations == 3
    cfg_t = dataclasses.replace(cfg, temporal_weight=4e6, warp_start=True)
    first = stylize_frame(vgg, cfg_t, targets, 0, content, styles, 7, None, None)
    assert first.start == "content" and first.evaluations == 6  # frame 0: `iterations`, from the config's init
