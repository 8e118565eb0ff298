"""The stylize task under (simulated) out-of-memory: split, then a smaller size, then failed_oom."""

import json

import torch

import pipeline.methods.stylize as stylize_mod
from pipeline.config import build_config
from pipeline.io.reader import InputRow
from pipeline.run.task import number
from pipeline.tasks.stylize import StylizeTask
from tests.conftest import make_image


def _task(tmp_path, n=3, size=96, **settings):
    paths = []
    for i in range(n):
        p = tmp_path / f"c{i}.png"
        make_image((size, size), i).save(p)
        paths.append(str(p))
    style = tmp_path / "s.png"
    make_image((64, 64), 9, "style").save(style)
    cfg = build_config(overrides={"size": size, "iterations": 3, "batch_size": n, "precision": "fp32", **settings})
    task = StylizeTask(cfg, [InputRow(p) for p in paths], [str(style)])
    task.setup("cpu")
    return task, number(task.plan(), cfg.seed)


def _with_memory_limit(monkeypatch, max_pixels_in_batch):
    """Run the real optimisation, but raise torch's OOM error above a pixel budget (as a GPU would)."""
    real = stylize_mod.stylize_batch
    calls = []

    def limited(backbone, cfg, targets, job, **kw):
        w, h = job.contents[0].size if cfg.size >= max(job.contents[0].size) else (cfg.size, cfg.size)
        pixels = len(job.contents) * w * h
        calls.append((len(job.contents), w, h))
        if pixels > max_pixels_in_batch and cfg.tile in ("none", "auto"):  # tiles (an int) fit
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return real(backbone, cfg, targets, job, **kw)

    monkeypatch.setattr(stylize_mod, "stylize_batch", limited)
    return calls


def test_oom_splits_the_batch_and_every_sample_still_succeeds(tmp_path, monkeypatch):
    task, samples = _task(tmp_path)
    calls = _with_memory_limit(monkeypatch, max_pixels_in_batch=96 * 96)  # one image fits, two do not
    results = task.process(samples)
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    assert [n for n, _, _ in calls] == [3, 1, 2, 1, 1]  # halves until each fits; sizes unchanged
    assert {(w, h) for _, w, h in calls} == {(96, 96)}
    assert all("oom_resized_from" not in r.meta for r in results)


def test_oom_alone_retries_smaller_then_fails(tmp_path, monkeypatch):
    task, samples = _task(tmp_path, n=1, tile="none")
    _with_memory_limit(monkeypatch, max_pixels_in_batch=80 * 80)  # 96 px does not fit, 72 px does
    (result,) = task.process(samples)
    assert result.status == "ok" and result.meta["oom_resized_from"] == [96, 96]
    assert result.meta["size"] == [72, 72]
    assert json.loads(result.members["json"])["size"] == [72, 72]

    _with_memory_limit(monkeypatch, max_pixels_in_batch=10)  # nothing fits, not even 64 px
    (result,) = task.process(samples)
    assert result.status == "failed_oom" and "out of memory" in result.error


def test_oom_alone_under_tile_auto_retries_in_tiles_at_full_size(tmp_path, monkeypatch):
    task, samples = _task(tmp_path, n=1)
    calls = _with_memory_limit(monkeypatch, max_pixels_in_batch=80 * 80)  # 96 px whole does not fit
    (result,) = task.process(samples)
    assert result.status == "ok" and "oom_resized_from" not in result.meta
    assert result.meta["size"] == [96, 96] and len(calls) == 2
    assert result.meta["tiles"]["tile"] == 64  # half the side, but never under 64 px
    assert json.loads(result.members["json"])["tiles"] == result.meta["tiles"]

