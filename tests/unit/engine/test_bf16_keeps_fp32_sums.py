"""bf16 autocast + channels_last keeps Gram matrices and loss sums in fp32, and the loss close to fp32."""

import pytest
import torch

from pipeline.config import StyleConfig
from pipeline.engine.loop import evaluate
from pipeline.engine.objectives import gram
from pipeline.engine.precision import autocast, resolve_precision, use_channels_last
from pipeline.methods.stylize import build_objective
from tests.conftest import make_image


def _objective_and_x(backbone, size=48):
    from pipeline.pixels import to_tensor

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


def _float64_activation(channels_last: bool) -> torch.Tensor:
    """A small (2, 3, 4, 5) float64 activation that requires grad, in the layout asked for."""
    f = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    if channels_last:
        f = f.contiguous(memory_format=torch.channels_last)
    return f.requires_grad_(True)


@pytest.mark.parametrize("channels_last", [False, True])
def test_gram_gradient_is_exact_in_float64(channels_last):
    """The Gram's own backward (dF = F·(dG + dGᵀ), one product) against numerical derivatives."""
    f = _float64_activation(channels_last)
    weight = torch.randn(2, 3, 3, dtype=torch.float64)  # not symmetric: both halves of dG count
    assert torch.autograd.gradcheck(lambda t: (gram(t).double() * weight).sum(), (f,))


@pytest.mark.parametrize("channels_last", [False, True])
def test_gram_distance_gradient_is_exact_in_float64(channels_last):
    """The style term's one-step backward (dF = 4·g·F·(FᵀF − T)) against numerical derivatives."""
    from pipeline.engine.objectives import gram_distance

    f = _float64_activation(channels_last)
    target = gram(torch.randn(2, 3, 4, 5, dtype=torch.float64))
    per_sample = torch.tensor([0.7, -1.3], dtype=torch.float64)  # each sample's upstream gradient differs
    assert torch.autograd.gradcheck(lambda t: (gram_distance(t, target) * per_sample).sum(), (f,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(8, 512, 2, 2), (2, 64, 24, 20)])
def test_gram_distance_matches_autograd_through_gram_bit_for_bit(dtype, shape):
    """Same loss and the same gradient bits as autograd of (gram(F) − T)².sum() on CPU: the
    fused backward relies on FᵀF (and so the difference) being exactly symmetric."""
    from pipeline.engine.objectives import gram_distance

    torch.manual_seed(0)
    base = torch.randn(*shape).contiguous(memory_format=torch.channels_last).to(dtype)
    target = gram(torch.randn(1, *shape[1:]).contiguous(memory_format=torch.channels_last)) * 0.5
    g = gram(base)
    assert torch.equal(g, g.transpose(1, 2)) and torch.equal(target, target.transpose(1, 2))
    weight = torch.tensor([3.0 ** -k for k in range(shape[0])])
    grads, losses = [], []
    for fused in (False, True):
        f = base.detach().clone().requires_grad_(True)
        loss = gram_distance(f, target) if fused else (gram(f) - target).pow(2).flatten(1).sum(1)
        (loss * weight).sum().backward()
        grads.append(f.grad)
        losses.append(loss.detach())
    assert torch.equal(losses[0], losses[1])
    assert torch.equal(grads[0], grads[1])


def test_gram_backward_in_bf16_matches_fp32():
    """Under bf16 the Gram stays fp32 and its backward product runs in bf16: the gradient reaching
    the network agrees with the fp32 one to bf16 precision."""
    torch.manual_seed(0)
    f32 = torch.randn(2, 16, 12, 10).contiguous(memory_format=torch.channels_last)
    target = gram(torch.randn(2, 16, 12, 10))
    grads = {}
    for dtype in (torch.float32, torch.bfloat16):
        f = f32.to(dtype).detach().requires_grad_(True)
        g = gram(f)
        assert g.dtype == torch.float32
        ((g - target) ** 2).sum().backward()
        assert f.grad.dtype == dtype
        grads[dtype] = f.grad.float()
    ref = grads[torch.float32]
    assert (grads[torch.bfloat16] - ref).norm() / ref.norm() < 2e-2


def test_bf16_weights_are_cast_once_and_match_autocast(backbone):
    """Under bf16 autocast the network holds its weights in bf16 (channels_last for a channels_last
    input) instead of recasting them at every call; the activations are bit-identical to autocast's
    own casts, and editing the weights makes a fresh copy."""
    from torch.nn import functional as F

    net = backbone.net
    x = backbone.pre.to_net(torch.rand(1, 3, 32, 32) * 255).contiguous(memory_format=torch.channels_last)
    with autocast("bf16", "cpu"):
        got = net(x, ["block2_conv1"])["block2_conv1"]
        w1 = net._weights_in("block1_conv1", torch.bfloat16, torch.channels_last)[0]
        again = net(x, ["block2_conv1"])["block2_conv1"]
        assert net._weights_in("block1_conv1", torch.bfloat16, torch.channels_last)[0] is w1  # reused
        y = x
        for kind, name in net.stages[:net.deepest_index(["block2_conv1"]) + 1]:
            y = F.relu(net.convs[name](y)) if kind == "conv" else F.max_pool2d(y, 2)
    assert w1.dtype == torch.bfloat16 and w1.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(got, y) and torch.equal(got, again)
    conv = net.convs["block1_conv1"]
    saved = conv.weight.detach().clone()
    try:
        with torch.no_grad():
            conv.weight.mul_(2)
        with autocast("bf16", "cpu"):
            changed = net(x, ["block1_conv1"])["block1_conv1"]
        assert net._weights_in("block1_conv1", torch.bfloat16, torch.channels_last)[0] is not w1
        assert not torch.equal(changed, got)
    finally:
        with torch.no_grad():
            conv.weight.copy_(saved)
