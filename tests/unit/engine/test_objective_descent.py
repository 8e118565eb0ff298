"""Every objective can be optimised: a few engine steps on a tiny image lower its value.

In the style of lucent's `assert_gradient_descent`: a term whose gradient is wrong, detached
or of the wrong sign does not go down, whatever its forward value looks like.
"""

from __future__ import annotations

import pytest
import torch

from pipeline.engine.loop import RenderOptions, evaluate, render
from pipeline.engine.objectives import (
    AlphaNorm, Content, MeanSquaredActivation, RelativeFeature, Style, TotalVariation, TotalVariationBeta, gram,
)

LAYER = "block2_conv1"


def _objectives(backbone, x_target):
    with torch.no_grad():
        feats = backbone.net(x_target, {LAYER})[LAYER]
    return {
        "content": Content(LAYER, feats),
        "style": Style(LAYER, gram(feats)),
        "tv": TotalVariation(),
        "relative_feature": RelativeFeature(LAYER, feats),
        "alpha_norm": AlphaNorm(),
        "tv_beta": TotalVariationBeta(),
        "mean_squared_activation": MeanSquaredActivation(LAYER, channel=3),
        "sum_and_scale": Content(LAYER, feats) + 0.5 * TotalVariation(),
    }


NAMES = ["content", "style", "tv", "relative_feature", "alpha_norm", "tv_beta", "mean_squared_activation",
         "sum_and_scale"]


@pytest.mark.parametrize("name", NAMES)
def test_gradient_descent_lowers_the_objective(vgg, name):
    gen = torch.Generator().manual_seed(0)
    x_target = vgg.pre.noise((1, 3, 32, 32), gen)
    x0 = vgg.pre.noise((1, 3, 32, 32), gen)
    objective = _objectives(vgg, x_target)[name]

    def value(x):
        return float(sum(v.sum() for v in evaluate(vgg.net, objective, x, "fp32").values()))

    before = value(x0)
    result = render(vgg.net, objective, x0, RenderOptions(5, optimizer="adam", lr=4.0, log_every=5))
    after = value(result.x)
    assert after < before, f"{name}: {before} -> {after}"
