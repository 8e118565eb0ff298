"""A real short optimisation through the real VGG16, determinism, config handling."""

import pytest
import torch

from pipeline.config import build_config
from pipeline.errors import BadInput
from pipeline.methods.stylize import StyleTargets, StylizeJob, stylize_batch
from tests.conftest import make_image


def _cfg(**kw):
    base = {"size": 48, "iterations": 30, "init": "content", "precision": "fp32", "log_every": 5}
    base.update(kw)
    return build_config(preset="seed-wave-chicago", overrides=base)


def test_style_targets_are_computed_once_per_style_and_size(backbone):
    cfg = _cfg(iterations=2)
    style = make_image((40, 40), 1, "style")
    targets = StyleTargets(backbone, cfg)
    for _ in range(3):
        stylize_batch(backbone, cfg, targets, StylizeJob([make_image((32, 32), 0)], [("s", style)], [0]))
    assert targets.computed == 1


def test_blend_of_two_styles_lies_between(backbone):
    cfg = _cfg(iterations=1)
    s1, s2 = make_image((32, 32), 1, "style"), make_image((32, 32), 0, "content")
    t = StyleTargets(backbone, cfg)
    g1 = t.get([("a", s1)], None, (32, 32))
    g2 = t.get([("b", s2)], None, (32, 32))
    g12 = t.get([("a", s1), ("b", s2)], [3.0, 1.0], (32, 32))
    layer = cfg.style_layers[0]
    torch.testing.assert_close(g12[layer], 0.75 * g1[layer] + 0.25 * g2[layer], rtol=1e-4, atol=1e-2)


def test_preserve_colors_keeps_content_chroma(backbone):
    from pipeline.pixels import to_tensor
    from pipeline.methods.stylize import rgb_to_yiq

    content = make_image((32, 32), 0, "content")
    ref = rgb_to_yiq(to_tensor(content))

    def chroma_drift(preserve):
        cfg = _cfg(iterations=5, preserve_colors=preserve)
        px, _ = stylize_batch(backbone, cfg, StyleTargets(backbone, cfg),
                              StylizeJob([content], [("s", make_image((32, 32), 1, "style"))], [0]))
        return float((rgb_to_yiq(px.cpu())[:, 1:] - ref[:, 1:]).abs().mean())

    kept, free = chroma_drift(True), chroma_drift(False)
    assert kept < 0.5 * free


def test_config_precedence_and_validation():
    cfg = build_config(preset="seed-starry-tubingen", overrides={"size": 64},
                       sets=["style_layers=relu1_1,relu2_1", "style_weights=[1, 2]", "tv_weight=0"])
    assert cfg.size == 64 and cfg.style_layers == ["block1_conv1", "block2_conv1"]
    assert cfg.style_weights == [1.0, 2.0] and cfg.tv_weight == 0.0 and cfg.content_weight == 100.0
    with pytest.raises(BadInput, match="style_weights has 3 values"):
        build_config(preset="seed-defaults", sets=["style_weights=[1,2,3]"])
    with pytest.raises(BadInput, match="size must be a positive integer, got 0"):
        build_config(overrides={"size": 0})
    with pytest.raises(BadInput, match="unknown config key 'colour'"):
        build_config(sets=["colour=1"])
    with pytest.raises(BadInput, match="unknown layer name 'relu9_9'"):
        build_config(sets=["content_layer=relu9_9"])


@pytest.mark.parametrize("preset", ["default", "seed-wave-chicago", "seed-starry-tubingen", "seed-defaults"])
def test_presets_load(preset):
    cfg = build_config(preset=preset)
    assert len(cfg.style_weights) == len(cfg.style_layers)
