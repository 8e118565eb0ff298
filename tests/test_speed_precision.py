"""bf16 autocast + channels_last keeps Gram matrices and loss sums in fp32, and the loss close to fp32."""

import pytest
import torch

from pipeline.config import StyleConfig
from pipeline.engine.loop import evaluate
from pipeline.engine.objectives import gram
from pipeline.engine.precision import autocast, resolve_precision, use_channels_last
from pipeline.tasks.stylize import build_objective
from tests.conftest import make_image


def _objective_and_x(backbone, size=48):
    from pipeline.io.images import to_tensor

    cfg = StyleConfig(size=size).validate()
    net, pre = backbone.net, backbone.pre
    content = pre.to_net(to_tensor(make_image((size, size), 0, "content")))
    style = pre.to_net(to_tensor(make_image((size, size), 1, "style")))
    with torch.no_grad():
        acts = net(style, cfg.style_layers)
        grams = {k: gram(acts[k]) for k in cfg.style_layers}
        cacts = net(content, [cfg.content_layer])[cfg.content_layer]
    objective = build_objective(cfg, cacts, grams)
    x = content + pre.noise((1, 3, size, size), torch.Generator().manual_seed(3)) * 0.3
    return objective, x


def test_losses_are_fp32_and_gradients_flow_under_bf16(backbone):
    objective, x = _objective_and_x(backbone)
    x = x.clone().requires_grad_(True)
    with autocast("bf16", x.device):
        acts = backbone.net(x.contiguous(memory_format=torch.channels_last), objective.layers)
    assert all(a.dtype == torch.bfloat16 for a in acts.values())  # the network ran in bf16
    with autocast("bf16", x.device):  # the loss terms are computed inside autocast too
        parts = objective.parts(acts, x)
        g = gram(acts["block1_conv1"])
    assert g.dtype == torch.float32
    assert all(v.dtype == torch.float32 and v.shape == (1,) for v in parts.values())
    sum(parts.values()).sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()


def test_bf16_loss_within_2_percent_of_fp32(backbone):
    objective, x = _objective_and_x(backbone)
    fp32 = evaluate(backbone.net, objective, x, "fp32")
    bf16 = evaluate(backbone.net, objective, x, "bf16")
    total32 = float(sum(fp32.values()))
    total16 = float(sum(bf16.values()))
    assert total16 == pytest.approx(total32, rel=0.02)
    assert total16 != total32  # bf16 really ran


def test_precision_choice():
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu") in ("fp32", "bf16")
    assert use_channels_last("bf16", "cpu") and not use_channels_last("fp32", "cpu")
