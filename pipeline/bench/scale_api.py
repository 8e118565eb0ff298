"""The one piece of the scale bench that calls the run machinery directly: a worker that
stops after one shard (the CLI has no such switch)."""

from __future__ import annotations

import time


def one_shard(out: str, data: str, style: str, shard_order: str) -> tuple[int, float]:
    """Open the run as `nst stylize` does, finish its first pending shard; (samples, seconds)."""
    from pipeline import api
    from pipeline.run.plan import open_run
    from pipeline.run.worker import Worker, WorkerOptions

    cfg = api.method_config("stylize", "default", {"size": 16, "iterations": 1, "seed": None}, [])
    task = api.method_task("stylize", cfg, data=data, styles=[style], shard_order=shard_order)
    plan = open_run(out, task, 1000)  # as `nst stylize` opens it: re-checks the inputs
    worker = Worker(plan, task, WorkerOptions(progress=False))
    worker._ensure_ready()
    shard = next(s for s in plan.shards if not worker.is_done(s))
    t = time.perf_counter()
    worker.try_shard(shard)
    seconds = time.perf_counter() - t
    worker.close()
    return worker.stats.processed, seconds
