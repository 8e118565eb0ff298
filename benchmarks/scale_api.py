"""The one piece of the scale bench that calls the run machinery directly: a worker that
stops after one shard (the CLI has no such switch)."""

from __future__ import annotations

import time


def first_shards(out: str, data: str, style: str, shard_order: str, shards: int = 3) -> tuple[list[dict], int]:
    """Open the run as `nst stylize` does, finish its first `shards` pending shards one after
    another; ([{samples, ok, seconds} per shard], torch threads)."""
    import torch

    from pipeline.tasks.registry import method_config, method_task
    from pipeline.run.folder.plan import plan_run
    from pipeline.run.execute.threads import resolve_threads
    from pipeline.run.execute.options import RunOptions
    from pipeline.run.execute.worker import Worker

    torch.set_num_threads(resolve_threads(None))  # a worker's default, as the runner sets it

    cfg = method_config("stylize", "default", {"size": 16, "iterations": 1, "seed": None}, [])
    task = method_task("stylize", cfg, data=data, styles=[style], shard_order=shard_order)
    plan = plan_run(out, task, 1000)  # as `nst stylize` opens it: re-checks the inputs
    worker = Worker(plan, task, RunOptions(out=plan.root, progress=False))
    worker._ensure_ready()
    measured = []
    for shard in [s for s in plan.shards if not worker.is_done(s)][:shards]:
        before = (worker.stats.processed, worker.stats.ok)
        t = time.perf_counter()
        worker.try_shard(shard)
        measured.append({"samples": worker.stats.processed - before[0], "ok": worker.stats.ok - before[1],
                         "seconds": time.perf_counter() - t})
    worker.close()
    return measured, torch.get_num_threads()
