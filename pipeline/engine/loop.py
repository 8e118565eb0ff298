"""The one render loop: optimise image pixels against an objective.

Every method (stylize, texture, invert, dream) builds an objective and an
initial image and calls `render`; none re-implements the loop. Host-device
synchronisation happens only at logging intervals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from pipeline.engine.compiled import LossAndGrad, forward_parts, resolve_compile
from pipeline.engine.objectives import Objective
from pipeline.engine.optim import make_optimizer
from pipeline.engine.precision import fast_fp32_matmul, use_channels_last


@dataclass
class RenderResult:
    x: torch.Tensor                       # final image(s) in network space, (B, 3, H, W)
    losses: list[dict[str, float]]        # per sample: each term and "total", at the final image
    evaluations: int
    seconds: float
    history: list[tuple[int, list[float]]] = field(default_factory=list)  # (evals, per-sample totals)
    compiled: str = "none"                # torch.compile mode the evaluations ran under ("none": eager)


def evaluate(net, objective: Objective, x: torch.Tensor, precision: str) -> dict[str, torch.Tensor]:
    """Per-term per-sample losses at x, without gradients."""
    with torch.no_grad():
        return forward_parts(net, objective, x, precision, use_channels_last(precision, x.device))


def _per_sample(parts: dict[str, torch.Tensor]) -> list[dict[str, float]]:
    names = list(parts)
    stacked = torch.stack([parts[n].detach().float() for n in names], 1).cpu() if names else None
    batch = stacked.shape[0] if stacked is not None else 0
    out = []
    for b in range(batch):
        row = {n: float(stacked[b, i]) for i, n in enumerate(names)}
        row["total"] = float(stacked[b].sum())
        out.append(row)
    return out


def render(
    net,
    objective: Objective,
    x0: torch.Tensor,
    iterations: int,
    optimizer: str = "lbfgs",
    lr: float = 1.0,
    history: int = 100,
    precision: str = "fp32",
    log_every: int = 10,
    on_log: Callable[[int, int, list[dict[str, float]]], None] | None = None,
    on_snapshot: Callable[[int, torch.Tensor], None] | None = None,
    snapshot_every: int = 0,
    maximize: bool = False,
    step_hook: Callable[[torch.Tensor, int], None] | None = None,
    max_step: float = 64.0,
    compile: str = "none",
) -> RenderResult:
    """Run `iterations` loss-and-gradient evaluations on a copy of x0.

    maximize=True ascends the objective (DeepDream); step_hook(x, i) may edit
    x in place between steps (jitter, clamping). max_step bounds the per-pixel
    L-BFGS step in network units. compile picks eager or a torch.compile mode
    (pipeline.engine.compiled; 'auto' compiles where it was measured to pay).
    """
    x = x0.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    opt = make_optimizer(optimizer, x, lr=lr, history=history, max_step=max_step)
    mode = resolve_compile(compile, x.device, iterations * x.numel() / max(1, x.shape[1]),
                           getattr(net, "pooling", "avg"))
    loss_and_grad = LossAndGrad(net, objective, precision, use_channels_last(precision, x.device), mode)
    sign = -1.0 if maximize else 1.0
    last_parts: dict[str, torch.Tensor] = {}
    evals = 0

    def closure():
        nonlocal last_parts, evals
        evals += 1
        opt.zero_grad(set_to_none=True)
        last_parts, total = loss_and_grad(x, sign)
        return total

    # `iterations` counts loss-and-gradient evaluations. One step is one evaluation
    # for Adam and L-BFGS without line search; with a line search a step may take
    # several, so the last step can end a few evaluations past the budget.
    history_rows: list[tuple[int, list[float]]] = []
    start = time.perf_counter()
    steps, next_log, next_snap = 0, log_every, snapshot_every
    while evals < iterations:
        with fast_fp32_matmul(precision, x.device):
            opt.step(closure)
        steps += 1
        if step_hook is not None:
            with torch.no_grad():
                step_hook(x, steps)
        if on_log is not None and (evals >= next_log or evals >= iterations):
            rows = _per_sample(last_parts)
            history_rows.append((evals, [r["total"] for r in rows]))
            on_log(min(evals, iterations), iterations, rows)
            next_log = (evals // log_every + 1) * log_every
        if on_snapshot is not None and snapshot_every and evals >= next_snap and evals < iterations:
            on_snapshot(evals, x.detach())
            next_snap = (evals // snapshot_every + 1) * snapshot_every
    final = _per_sample(evaluate(net, objective, x.detach(), precision))
    seconds = time.perf_counter() - start
    return RenderResult(x=x.detach(), losses=final, evaluations=evals, seconds=seconds, history=history_rows,
                        compiled=loss_and_grad.mode)
