"""torch.compile of the evaluation: same result as eager, and a failing compiler falls back to eager."""

import warnings

import pytest
import torch

import pipeline.engine.compiled as compiled
from pipeline.config import StyleConfig, build_config
from pipeline.engine.compiled import AUTO_CPU_PIXEL_EVALS, resolve_compile
from pipeline.engine.loop import RenderOptions, render
from pipeline.errors import BadInput
from pipeline.methods.stylize import build_objective


def _problem(backbone, size):
    """A real stylization objective on two images of `size` px (content = one picture, style = another)."""
    torch.manual_seed(0)
    cfg = StyleConfig().validate()
    content = backbone.pre.to_net(torch.rand(2, 3, size, size) * 255)
    style = backbone.pre.to_net(torch.rand(1, 3, size, size) * 255)
    with torch.no_grad():
        acts = backbone.net(content, [cfg.content_layer])
        sacts = backbone.net(style, cfg.style_layers)
    from pipeline.engine.objectives import gram

    objective = build_objective(cfg, acts[cfg.content_layer], {k: gram(v) for k, v in sacts.items()})
    return objective, content


@pytest.mark.slow  # starts `nst` processes or compiles: not in `make test-fast`
def test_compiled_render_matches_eager(backbone):
    torch.set_num_threads(2)
    objective, x0 = _problem(backbone, 32)
    eager = render(backbone.net, objective, x0, RenderOptions(6, history=5, precision="fp32"))
    comp = render(backbone.net, objective, x0, RenderOptions(6, history=5, precision="fp32", compile="default"))
    assert eager.compiled == "none" and comp.compiled == "default"
    for e, c in zip(eager.losses, comp.losses):
        assert c["total"] == pytest.approx(e["total"], rel=1e-3)
    assert (comp.x - eager.x).abs().max() < 1e-2 * eager.x.abs().max()
    assert (comp.x - x0).abs().max() > 1.0  # it optimised


@pytest.mark.slow  # starts `nst` processes or compiles: not in `make test-fast`
def test_failing_compiler_falls_back_to_eager(backbone, monkeypatch):
    """No usable C++ compiler: the render warns once and runs eager with the same result."""
    import torch._inductor.config as inductor

    monkeypatch.setattr(inductor.cpp, "cxx", ("/nonexistent/c++",))
    monkeypatch.setattr(inductor, "fx_graph_cache", False)
    monkeypatch.setattr(compiled, "_compiled", {})
    monkeypatch.setattr(compiled, "_broken", {})
    torch._dynamo.reset()
    objective, x0 = _problem(backbone, 24)
    eager = render(backbone.net, objective, x0, RenderOptions(4, history=5, precision="fp32"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        comp = render(backbone.net, objective, x0, RenderOptions(4, history=5, precision="fp32", compile="default"))
    assert comp.compiled == "none"
    assert [str(w.message) for w in caught if "torch.compile" in str(w.message)][0].startswith(
        "torch.compile (mode default) failed, running eager instead")
    assert torch.equal(comp.x, eager.x)
    torch._dynamo.reset()


def test_auto_compiles_only_where_it_pays():
    assert resolve_compile("auto", "cpu", AUTO_CPU_PIXEL_EVALS) == "default"
    assert resolve_compile("auto", "cpu", 300 * 64 * 64) == "none"
    assert resolve_compile("auto", "cpu", AUTO_CPU_PIXEL_EVALS, pooling="max") == "none"  # measured slower
    assert resolve_compile("auto", "cuda", 1e12) == "none"  # not yet measured to pay on a GPU
    assert resolve_compile("reduce-overhead", "cpu", 1) == "reduce-overhead"
    assert build_config().compile == "auto"
    with pytest.raises(BadInput, match="compile must be one of none, auto, default, reduce-overhead, "
                                       "max-autotune, got 'fast'"):
        build_config(overrides={"compile": "fast"})
