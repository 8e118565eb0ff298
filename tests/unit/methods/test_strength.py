"""`strength` (0..1) sets the content/style balance: on the ruler of `nst look`, structure falls and
style match rises with it, at 128 and at 256 px (the default preset, real weights, few evaluations)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.config import STRENGTH_SPAN, build_config
from pipeline.errors import BadInput
from pipeline.io.images import load_image
from pipeline.pixels import to_pil
from pipeline.methods.look import LookRuler
from pipeline.methods.stylize import StyleTargets, StylizeJob, stylize_batch
from pipeline.models.vgg import Backbone

ROOT = Path(__file__).resolve().parents[3]
STRENGTHS = (0.1, 0.5, 0.9)


@pytest.fixture(scope="module")
def tools():
    torch.set_num_threads(1)
    cfg = build_config(overrides={"size": 128})
    return Backbone("vgg16", cfg.pooling), LookRuler()


def test_strength_sets_the_content_weight_on_a_log_scale():
    base = build_config(sets=["strength=0.5"])
    assert base.balanced_content_weight() == base.content_weight
    assert build_config(sets=["strength=0"]).balanced_content_weight() == base.content_weight * STRENGTH_SPAN
    assert build_config(sets=["strength=1"]).balanced_content_weight() == pytest.approx(
        base.content_weight / STRENGTH_SPAN)
    assert build_config(sets=["strength=null"]).balanced_content_weight() == base.content_weight


@pytest.mark.parametrize("bad", ["1.5", "-0.1", "abc"])
def test_strength_outside_0_1_is_refused_in_one_line(bad):
    with pytest.raises(BadInput) as err:
        build_config(sets=[f"strength={bad}"])
    assert "strength" in str(err.value) and "\n" not in str(err.value)


def test_strength_needs_a_mean_loss():
    with pytest.raises(BadInput, match="strength 0.3 needs loss_reduction: mean"):
        build_config(preset="seed-defaults", sets=["strength=0.3"])


@pytest.mark.slow  # six 30-evaluation renders: not in `make test-fast`
@pytest.mark.parametrize("size", [128, 256])
def test_structure_falls_and_style_match_rises_with_strength(tools, size):
    backbone, ruler = tools
    content = load_image(ROOT / "examples" / "content" / "astronaut.jpg")
    style = load_image(ROOT / "examples" / "style" / "great_wave_of_kanagawa.jpg")
    looks = []
    for s in STRENGTHS:
        cfg = build_config(overrides={"size": size, "iterations": 30, "precision": "fp32", "compile": "none"},
                           sets=[f"strength={s}"])
        pixels, _ = stylize_batch(backbone, cfg, StyleTargets(backbone, cfg),
                                  StylizeJob([content], [("wave", style)], [0]))
        looks.append(ruler.score_one(content, style, to_pil(pixels[0])))
    structure = [lk.structure for lk in looks]
    match = [lk.style_match for lk in looks]
    assert structure == sorted(structure, reverse=True) and len(set(structure)) == 3, (size, looks)
    assert match == sorted(match) and len(set(match)) == 3, (size, looks)
