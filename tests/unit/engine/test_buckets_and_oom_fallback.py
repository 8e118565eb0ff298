"""Bucketing by size, batch size from memory, and the out-of-memory fallback (simulated on CPU).

The fallback runs the real engine (VGG16 + render) on tiny images; out-of-memory is
simulated by a memory budget in pixels that raises torch.OutOfMemoryError, the
error CUDA raises, when a batch would exceed it.
"""

import pytest
import torch

from pipeline.config import StyleConfig
from pipeline.engine.batching import (
    FAILED_OOM, OK, RESIZED, bucket_by_size, choose_batch_size, is_oom,
    make_batches, run_with_oom_fallback, shrink_by, snap_size,
)
from pipeline.engine.loop import RenderOptions, render
from pipeline.engine.memory import bytes_per_image, free_bytes
from pipeline.engine.objectives import TotalVariation, gram
from pipeline.methods.stylize import build_objective


def test_snap_and_buckets_share_sizes():
    sizes = [(512, 341), (512, 342), (500, 333), (512, 512), (512, 340)]
    snapped = [snap_size(s, 16) for s in sizes]
    assert snapped == [(512, 336), (512, 336), (496, 320), (512, 512), (512, 336)]
    assert snap_size((10, 7), 16) == (16, 16) and snap_size((33, 21), 1) == (33, 21)
    buckets = bucket_by_size(range(len(sizes)), lambda i: snapped[i])
    assert list(buckets.values()) == [[0, 1, 4], [2], [3]]
    batches = make_batches(range(len(sizes)), lambda i: snapped[i], 2)
    assert batches == [((512, 336), [0, 1]), ((512, 336), [4]), ((496, 320), [2]), ((512, 512), [3])]
    by_size = make_batches(range(len(sizes)), lambda i: snapped[i], lambda s: 3 if s == (512, 336) else 1)
    assert by_size[0] == ((512, 336), [0, 1, 4])


def test_batch_size_from_memory(backbone):
    layers = StyleConfig().validate().style_layers + ["block4_conv2"]
    per = bytes_per_image(backbone.net, layers, 512, 512, "bf16", 100)
    # measured on an H100: 4.3 kB per pixel in bf16; the estimate errs on the safe side
    assert 4300 * 512 * 512 < per < 5500 * 512 * 512
    assert bytes_per_image(backbone.net, layers, 512, 512, "fp32", 100) > per
    assert bytes_per_image(backbone.net, layers, 1024, 1024, "bf16", 100) == 4 * per
    assert choose_batch_size(per, 80 * 2**30, 64) == int(0.85 * 80 * 2**30 // per)
    assert choose_batch_size(per, 10 * per, 4) == 4
    assert choose_batch_size(per, per // 2, 8) == 1
    assert free_bytes("cpu") > 0


def test_is_oom():
    assert is_oom(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes"))
    assert not is_oom(RuntimeError("shape mismatch"))
    assert not is_oom(ValueError("out of memory"))


class Stylizer:
    """The real engine on a batch of noise images at a given side, under a simulated memory budget."""

    def __init__(self, backbone, budget_pixels):
        self.backbone, self.budget, self.calls = backbone, budget_pixels, []
        cfg = StyleConfig().validate()
        self.cfg = cfg

    def __call__(self, items, side):
        self.calls.append((list(items), side))
        if len(items) * side * side > self.budget:
            raise torch.OutOfMemoryError(f"CUDA out of memory (simulated): {len(items)} x {side}px")
        net, pre = self.backbone.net, self.backbone.pre
        x0 = torch.cat([pre.noise((1, 3, side, side), torch.Generator().manual_seed(i)) for i in items])
        with torch.no_grad():
            acts = net(x0[:1] * 0.5, self.cfg.style_layers)
            grams = {k: gram(acts[k]) for k in self.cfg.style_layers}
        objective = build_objective(self.cfg, None, grams) + TotalVariation()
        result = render(net, objective, x0, RenderOptions(2, optimizer="lbfgs", log_every=2))
        return [result.x[i:i + 1] for i in range(len(items))]


def test_oom_splits_the_batch_then_everything_runs(backbone):
    run = Stylizer(backbone, budget_pixels=2 * 32 * 32)
    steps = []
    out = run_with_oom_fallback([0, 1, 2, 3], 32, run, shrink_by(0.75, minimum=16, multiple=8),
                                on_oom=lambda *a: steps.append(a))
    assert [o.item for o in out] == [0, 1, 2, 3]
    assert all(o.status == OK and o.size == 32 and o.result.shape == (1, 3, 32, 32) for o in out)
    assert steps == [("split", 4, 32)]
    assert [len(items) for items, _ in run.calls] == [4, 2, 2]


def test_oom_on_one_image_retries_smaller(backbone):
    run = Stylizer(backbone, budget_pixels=24 * 24)
    out = run_with_oom_fallback([5, 6], 32, run, shrink_by(0.75, minimum=16, multiple=8))
    assert [o.status for o in out] == [RESIZED, RESIZED]
    assert [o.size for o in out] == [24, 24]
    assert all(o.result.shape == (1, 3, 24, 24) and torch.isfinite(o.result).all() for o in out)


def test_oom_at_every_size_is_failed_oom_not_a_crash(backbone):
    run = Stylizer(backbone, budget_pixels=8 * 8)
    steps = []
    out = run_with_oom_fallback([0, 1, 2], 32, run, shrink_by(0.5, minimum=16, multiple=8),
                                on_oom=lambda *a: steps.append(a[0]))
    assert [o.status for o in out] == [FAILED_OOM] * 3
    assert [o.item for o in out] == [0, 1, 2]
    assert all(o.result is None for o in out)
    assert steps.count("failed_oom") == 3 and "split" in steps and "shrink" in steps


def test_other_errors_are_not_swallowed(backbone):
    def broken(items, side):
        raise RuntimeError("shape mismatch in the objective")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_with_oom_fallback([0, 1], 32, broken, shrink_by())


def test_shrink_policy():
    step = shrink_by(0.75, minimum=64, multiple=16)
    assert step(512) == 384 and step(96) == 64 and step(64) is None
    assert step((512, 336)) == (384, 240)
    assert step((64, 64)) is None


def test_auto_batch_size_buckets_up_to_max_batch(tmp_path, backbone):
    """batch_size=auto: the runner hands max_batch samples; each size bucket is sized from free memory."""
    from pipeline.config import build_config
    from pipeline.engine.batching import auto_batch_size
    from pipeline.errors import BadInput
    from pipeline.io.reader import InputRow
    from pipeline.run.task import number
    from pipeline.tasks.stylize import StylizeTask
    from tests.conftest import make_image

    cfg = build_config(overrides={"size": 40, "iterations": 2, "batch_size": "auto", "max_batch": 2,
                                  "precision": "fp32"})
    layers = [cfg.content_layer, *cfg.style_layers]
    per = bytes_per_image(backbone.net, layers, 40, 40, "fp32", cfg.lbfgs_history)
    assert auto_batch_size(backbone.net, layers, 40, 40, cfg, "cpu") == min(2, int(0.85 * free_bytes("cpu") // per))
    huge = build_config(overrides={"batch_size": "auto", "max_batch": 64})
    assert auto_batch_size(backbone.net, layers, 8192, 8192, huge, "cpu") < 64  # 8k px: memory, not max_batch, decides

    paths = []
    for i, wh in enumerate([(40, 40), (40, 40), (40, 40), (40, 32)]):
        p = tmp_path / f"c{i}.png"
        make_image(wh, i).save(p)
        paths.append(str(p))
    style = tmp_path / "s.png"
    make_image((40, 40), 9, "style").save(style)
    task = StylizeTask(cfg, [InputRow(p) for p in paths], [str(style)])
    assert task.batch_size == 2
    task.setup("cpu")
    samples = number(task.plan(), cfg.seed)
    results = task.process(samples[:3]) + task.process(samples[3:])
    assert [r.status for r in results] == ["ok"] * 4
    assert [r.meta["batch"] for r in results] == [2, 2, 1, 1]
    assert {r.meta["compiled"] for r in results} == {"none"}  # auto: too small to repay a compilation

    with pytest.raises(BadInput, match="batch_size must be a positive integer or 'auto', got 'many'"):
        build_config(overrides={"batch_size": "many"})
