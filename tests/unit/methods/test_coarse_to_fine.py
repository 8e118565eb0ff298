"""The multi-resolution schedule (coarse_stages): parts of the budget at smaller sizes, then full size."""

import dataclasses

import pytest

from pipeline.config import build_config
from pipeline.errors import BadInput
from pipeline.methods.stages import pixel_evaluations, stage_plan
from pipeline.methods.stylize import StyleTargets, StylizeJob, stylize_batch
from tests.conftest import make_image


def _cfg(**kw):
    base = {"size": 80, "iterations": 20, "precision": "fp32", "log_every": 2, "compile": "none"}
    base.update(kw)
    return build_config(overrides=base)


def _plan(wh, **kw):
    cfg = _cfg(**kw)
    return stage_plan(cfg.iterations, cfg.coarse_stages, wh, cfg.stage_base, cfg.stage_base_share)


def test_absolute_stages():
    # the default: 40% of the budget at 256 px, then sqrt(2) steps sharing the rest, whatever the output size
    assert _plan((80, 64)) == [(20, (80, 64))]                        # no larger than the base: one stage
    assert _plan((256, 192), iterations=300, size=256) == [(300, (256, 192))]
    assert _plan((512, 384), iterations=300, size=512) == [(120, (256, 192)), (90, (362, 272)), (90, (512, 384))]
    assert [wh for _, wh in _plan((1024, 1024), iterations=300, size=1024)] == [
        (256, 256), (362, 362), (512, 512), (724, 724), (1024, 1024)]
    assert [n for n, _ in _plan((1024, 1024), iterations=300, size=1024)] == [120, 45, 45, 45, 45]
    # from a 128 px base (the former default): three stages at 256 px
    assert _plan((224, 224), iterations=500, size=224, stage_base=128) == [
        (200, (128, 128)), (150, (181, 181)), (150, (224, 224))]
    # a thin image: stages under 32 px give their evaluations to the next one
    assert _plan((512, 40), iterations=10, size=512) == [(10, (512, 40))]
    assert _plan((1024, 100), iterations=10, size=1024) == [(5, (362, 35)), (1, (512, 50)), (1, (724, 71)),
                                                             (3, (1024, 100))]
    # a non-empty coarse_stages takes precedence over the absolute stages
    assert _plan((256, 192), iterations=20, size=256, coarse_stages=[[0.5, 0.5]]) == [(10, (128, 96)), (10, (256, 192))]
    assert pixel_evaluations(500, [], (256, 256), 128, 0.4) == 200 * 128 * 128 + 150 * 181 * 181 + 150 * 256 * 256


def test_stage_plan():
    assert _plan((80, 64), coarse_stages=[]) == [(20, (80, 64))]           # one full-size stage
    assert _plan((80, 64), coarse_stages=[[0.5, 0.5]]) == [(10, (40, 32)), (10, (80, 64))]
    assert _plan((80, 60), coarse_stages=[[0.5, 0.5]]) == [(20, (80, 60))]  # 30 px: too small
    assert _plan((160, 128), coarse_stages=[[0.25, 0.5], [0.5, 0.25]], size=160) == [
        (10, (40, 32)), (5, (80, 64)), (5, (160, 128))]
    assert _plan((80, 64), coarse_stages=[[0.5, 0.99]], iterations=3) == [(2, (40, 32)), (1, (80, 64))]
    # the cost estimate's measure: a stage at half the size costs a quarter of the pixels
    assert pixel_evaluations(20, [[0.5, 0.5]], (80, 64)) == 10 * 40 * 32 + 10 * 80 * 64


@pytest.mark.parametrize("bad", [[[0.5, 0.5], [0.25, 0.2]],   # finest first
                                 [[0.5, 0.3], [0.5, 0.2]],    # the same scale twice
                                 [[1.0, 0.5]], [[0.5, 0.0]],  # scale not below 1, share not above 0
                                 [[0.25, 0.6], [0.5, 0.4]],   # nothing left for full size
                                 [0.5], [[0.5]], "x"])
def test_bad_stages_are_one_line_naming_the_value(bad):
    with pytest.raises(BadInput) as err:
        _cfg(coarse_stages=bad)
    assert str(err.value) == ("coarse_stages must be a list of [scale, share] pairs, coarsest first, each scale "
                              "> 0 and < 1, each share > 0, the shares summing to less than 1, got " + repr(bad))


def test_coarse_then_fine_spends_the_budget_and_ends_at_full_size(backbone):
    cfg = _cfg(coarse_stages=[[0.5, 0.5]])
    content, style = make_image((80, 64), 0), make_image((64, 64), 1, "style")
    targets = StyleTargets(backbone, cfg)
    logged = []
    pixels, result = stylize_batch(backbone, cfg, targets, StylizeJob([content], [("s", style)], [0]),
                                   on_log=lambda done, total, rows: logged.append((done, total)))
    assert pixels.shape == (1, 3, 64, 80)
    assert result.evaluations == 20 and result.history[-1][0] == 20
    assert [d for d, _ in logged] == sorted(d for d, _ in logged) and logged[-1] == (20, 20)
    assert {t for _, t in logged} == {20}                     # one progress scale over both stages
    assert targets.computed == 2                              # style targets at both sizes
    plain, base = stylize_batch(backbone, dataclasses.replace(cfg, coarse_stages=[]), targets,
                                StylizeJob([content], [("s", style)], [0]))
    assert (plain - pixels).abs().max() > 1.0                 # the schedule changed the path
    # both optimise the same full-size objective: the final losses are of the same order
    assert 0.2 < result.losses[0]["total"] / base.losses[0]["total"] < 5
