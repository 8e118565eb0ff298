"""The content target taken from the render's first evaluation (which is at the content itself)."""

import pytest
import torch

import pipeline.methods.stylize as stylize
from pipeline.config import build_config
from pipeline.methods.stylize import StyleTargets, StylizeJob, stylize_batch
from tests.conftest import make_image


@pytest.fixture
def built(monkeypatch) -> list:
    """The content target each objective of stylize_batch was built with, in order."""
    seen = []
    real_build = stylize.build_objective

    def spy(cfg, content_acts, grams):
        seen.append(content_acts)
        return real_build(cfg, content_acts, grams)

    monkeypatch.setattr(stylize, "build_objective", spy)
    return seen


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_first_evaluation_target_gives_the_same_bits_as_the_contents_own_forward(vgg, monkeypatch, built,
                                                                                  precision):
    cfg = build_config(overrides={"size": 48, "iterations": 4, "precision": precision, "compile": "none",
                                  "coarse_stages": [], "init": "content"})
    job = StylizeJob([make_image((48, 40), seed=1), make_image((48, 40), seed=2)],
                     [("s", make_image((48, 40), kind="style"))], [1, 2])
    lazy_pixels, lazy = stylize_batch(vgg, cfg, StyleTargets(vgg, cfg), job)
    assert built[-1] is stylize.AT_FIRST_EVALUATION  # eager render from the content: no forward of its own
    # the same render with the content's own forward pass (what a compiled render does)
    monkeypatch.setattr(stylize, "compile_mode", lambda *a: "default")
    own_pixels, own = stylize_batch(vgg, cfg, StyleTargets(vgg, cfg), job)
    assert isinstance(built[-1], torch.Tensor)
    assert torch.equal(lazy_pixels, own_pixels)
    assert lazy.losses == own.losses and lazy.losses[0]["content"] > 0


def test_a_render_not_started_at_the_content_computes_its_target(vgg, built):
    cfg = build_config(overrides={"size": 48, "iterations": 2, "precision": "fp32", "compile": "none",
                                  "coarse_stages": [], "init": "noise"})
    job = StylizeJob([make_image((48, 40), seed=1)], [("s", make_image((48, 40), kind="style"))], [1])
    stylize_batch(vgg, cfg, StyleTargets(vgg, cfg), job)
    assert isinstance(built[-1], torch.Tensor)
