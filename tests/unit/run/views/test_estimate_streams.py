"""The plan-time cost estimate reads a bounded sample of the plan, not every row."""

from __future__ import annotations

from dataset_util import picture

from pipeline.run.folder.plan import plan_run
from pipeline.run.views.estimate import estimate_cost
from pipeline.tasks.registry import method_config, method_task
from pipeline.run.views import estimate as estimate_mod
from pipeline.run.folder import plan_samples as sample_files


def test_estimate_reads_at_most_header_shards_sample_files(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for i in range(30):  # two sizes, so the size-ordered plan keeps them in separate shards
        picture(data / f"p{i:02d}.png", size=(24, 16) if i % 3 else (16, 16), seed=i)
    style = picture(tmp_path / "s.png", seed=99)
    cfg = method_config("stylize", "default", {"size": 16, "iterations": 3}, [])
    task = method_task("stylize", cfg, data=data, styles=[style])
    plan = plan_run(tmp_path / "run", task, 1)
    assert len(plan.shards) == 30
    monkeypatch.setattr(estimate_mod, "HEADER_SHARDS", 7)
    sample_files.READS.clear()
    est = estimate_cost(plan, task, "cpu")
    assert 0 < sum(sample_files.READS.values()) <= 7
    assert est.samples == est.pending == 30 and est.iterations == 3
    # every planned sample is represented once the sampled shards are scaled up, both sizes seen
    assert sum(est.sizes.values()) == 30 and set(est.sizes) == {(16, 11), (16, 16)}, est.sizes
