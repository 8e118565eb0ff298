"""Where an evaluation's time goes: a torch.profiler kernel table of production evaluations.

The GPU target is about the network running near the matmul rate; the convolutions'
share of the device time says how much of an evaluation is the network itself, and
the table (self time per kernel or operator, sorted by device time on CUDA) shows which
of the rest keep it from there, so the next optimisation is chosen by measurement.
"""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile

from pipeline.engine.loop import RenderOptions, render

# Operators whose total time (their kernels included) is the convolutions' time.
CONV_OPS = ("aten::convolution", "aten::convolution_backward")


def _time(evt, cuda: bool, total: bool) -> float:
    """An event's device time on CUDA (self or with children), CPU time otherwise, in µs."""
    if cuda:
        names = ("device_time_total", "cuda_time_total") if total else ("self_device_time_total",
                                                                          "self_cuda_time_total")
    else:
        names = ("cpu_time_total",) if total else ("self_cpu_time_total",)
    for name in names:
        if hasattr(evt, name):
            return float(getattr(evt, name))
    return 0.0


def conv_share(averages, cuda: bool) -> dict:
    """The convolutions' time against all the profiled (self) time."""
    everything = sum(_time(e, cuda, total=False) for e in averages)
    conv = sum(_time(e, cuda, total=True) for e in averages if e.key in CONV_OPS)
    return {"conv_us": conv, "total_us": everything, "conv_share": conv / everything if everything else None}


def profile_evaluations(work, batch: int, precision: str, history: int, evaluations: int = 1,
                        rows: int = 30) -> dict:
    """Profile `evaluations` production evaluations (one L-BFGS step each, after 3 warm-up ones)."""
    cuda = work.device.type == "cuda"
    objective = work.objective(0, batch)
    x0 = work.start[:batch]
    kwargs = dict(optimizer="lbfgs", lr=work.cfg.learning_rate, history=history, precision=precision,
                  log_every=10 ** 9, max_step=work.cfg.lbfgs_max_step * work.pre.unit)
    render(work.net, objective, x0, RenderOptions(3, **kwargs))
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        render(work.net, objective, x0, RenderOptions(evaluations, **kwargs))
        if cuda:
            torch.cuda.synchronize(work.device)
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    averages = prof.key_averages()
    table = averages.table(sort_by=sort, row_limit=rows, max_name_column_width=60)
    return {"batch": batch, "precision": precision, "size": work.size, "evaluations": evaluations,
            "sorted_by": sort, "table": table, **conv_share(averages, cuda)}

