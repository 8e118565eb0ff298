"""Where an evaluation's time goes: a torch.profiler table of a few production evaluations.

The GPU targets are about the network running near the matmul rate; this table
(self time per operator, sorted by device time on CUDA) shows which kernels
keep it from there, so the next optimisation is chosen by measurement.
"""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile

from pipeline.engine.loop import RenderOptions, render


def profile_evaluations(work, batch: int, precision: str, history: int, evaluations: int = 6,
                        rows: int = 30) -> dict:
    """Profile `evaluations` production evaluations (after 3 warm-up ones) at this batch and precision."""
    cuda = work.device.type == "cuda"
    objective = work.objective(0, batch)
    x0 = work.noise[:batch]
    kwargs = dict(optimizer="lbfgs", lr=work.cfg.learning_rate, history=history, precision=precision,
                  log_every=10 ** 9, max_step=work.cfg.lbfgs_max_step * work.pre.unit)
    render(work.net, objective, x0, RenderOptions(3, **kwargs))
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        render(work.net, objective, x0, RenderOptions(evaluations, **kwargs))
        if cuda:
            torch.cuda.synchronize(work.device)
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=rows, max_name_column_width=60)
    return {"batch": batch, "precision": precision, "evaluations": evaluations, "sorted_by": sort, "table": table}
