"""Batched optimisation gives every image the result it gets alone (L-BFGS and Adam).

torch.optim.LBFGS couples all parameters; the engine's 'lbfgs' keeps one history
and one step per sample, so a batch of B images optimised together must follow
the same iterates as each image optimised by itself, up to float rounding of
the batched convolutions. Real VGG16, small images, few evaluations.
"""

import pytest
import torch

from pipeline.config import StyleConfig
from pipeline.engine.loop import RenderOptions, render
from pipeline.engine.objectives import gram
from pipeline.methods.stylize import build_objective
from tests.conftest import make_image

SIZE = 32


def _problem(backbone, n):
    """n different contents, one style, seeded noise starts; the default style objective."""
    from pipeline.pixels import to_tensor

    torch.manual_seed(0)
    cfg = StyleConfig(size=SIZE).validate()
    net, pre = backbone.net, backbone.pre
    contents = torch.cat([to_tensor(make_image((SIZE, SIZE), seed, "content")) for seed in range(n)])
    style = to_tensor(make_image((SIZE, SIZE), 7, "style"))
    with torch.no_grad():
        acts = net(pre.to_net(style), cfg.style_layers)
        grams = {layer: gram(acts[layer]) for layer in cfg.style_layers}
        content_acts = net(pre.to_net(contents), [cfg.content_layer])[cfg.content_layer]
    x0 = torch.cat([pre.noise((1, 3, SIZE, SIZE), torch.Generator().manual_seed(s)) for s in range(n)])
    return cfg, net, content_acts, grams, x0


def _run(cfg, net, content_acts, grams, x0, optimizer, iterations, lr):
    objective = build_objective(cfg, content_acts, grams)
    return render(net, objective, x0, RenderOptions(iterations, optimizer=optimizer, lr=lr, history=cfg.lbfgs_history,
                                                    precision="fp32", log_every=iterations,
                                                    max_step=cfg.lbfgs_max_step))


@pytest.mark.parametrize("optimizer,lr,iterations", [("lbfgs", 1.0, 10), ("adam", 2.0, 10)])
def test_batched_equals_one_by_one(backbone, optimizer, lr, iterations):
    torch.set_num_threads(1)
    cfg, net, content_acts, grams, x0 = _problem(backbone, 3)
    batched = _run(cfg, net, content_acts, grams, x0, optimizer, iterations, lr)
    start_loss = _run(cfg, net, content_acts, grams, x0, "adam", 1, 1e-9).losses
    for i in range(3):
        alone = _run(cfg, net, content_acts[i:i + 1], grams, x0[i:i + 1], optimizer, iterations, lr)
        # the images moved (and the loss fell), so equality is not trivial
        assert (alone.x - x0[i:i + 1]).abs().max() > 1.0
        assert alone.losses[0]["total"] < 0.99 * start_loss[i]["total"]
        assert torch.allclose(batched.x[i:i + 1], alone.x, atol=0.05, rtol=0), \
            float((batched.x[i:i + 1] - alone.x).abs().max())
        assert batched.losses[i]["total"] == pytest.approx(alone.losses[0]["total"], rel=1e-3)


def test_batch_mates_do_not_change_a_sample(backbone):
    """Sample 0 next to two other images, or next to copies of itself: same iterates."""
    torch.set_num_threads(1)
    cfg, net, content_acts, grams, x0 = _problem(backbone, 3)
    a = _run(cfg, net, content_acts, grams, x0, "lbfgs", 10, 1.0)
    same = _run(cfg, net, content_acts[:1].expand(3, -1, -1, -1), grams, x0[:1].expand(3, -1, -1, -1),
                "lbfgs", 10, 1.0)
    assert torch.allclose(a.x[:1], same.x[:1], atol=0.05, rtol=0)
    assert not torch.allclose(a.x[1:2], same.x[1:2], atol=1.0)


def test_two_loop_direction_matches_the_textbook_recursion():
    """The fused two-loop gives -H·g of Nocedal & Wright (alg. 7.4), per sample, newest pair first."""
    from pipeline.engine.lbfgs import LBFGS

    torch.manual_seed(0)
    b, n, m = 3, 50, 4
    opt = LBFGS(torch.zeros(b, n), history=m)
    pairs = []
    for _ in range(6):  # more pairs than the history: the ring drops the oldest
        s, y = torch.randn(b, n), torch.randn(b, n)
        y = y + 3 * s  # keeps s·y > 0 (curvature condition)
        opt._remember(s, y)
        pairs.append((s, y))
    g = torch.randn(b, n)
    got = opt._direction(g)
    for k in range(b):
        kept = [(s[k].double(), y[k].double()) for s, y in pairs[-m:]]
        q, alphas = -g[k].double(), []
        for s, y in reversed(kept):
            a = (s @ q) / (y @ s)
            alphas.append(a)
            q = q - a * y
        s, y = kept[-1]
        q = q * (s @ y) / (y @ y)
        for (s, y), a in zip(kept, reversed(alphas)):
            q = q + (a - (y @ q) / (y @ s)) * s
        assert torch.allclose(got[k].double(), q, rtol=1e-4, atol=1e-5)
