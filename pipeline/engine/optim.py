"""Optimiser construction for pixel optimisation.

One step = one loss-and-gradient evaluation for every optimiser here, so
`iterations` counts evaluations (as the reference counts scipy's function
evaluations).
"""

from __future__ import annotations

import torch


def make_optimizer(name: str, params, lr: float = 1.0, history: int = 100, line_search: bool = True):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "lbfgs":
        # max_iter=1: each .step() is one L-BFGS iteration, so logging and
        # snapshots happen between iterations. Tolerances are disabled as in the
        # classic tools: under bf16 the default ones stop after one evaluation.
        # The strong-Wolfe line search (as scipy's L-BFGS in the reference) is
        # needed at the reference's loss scale: without it a noise start at small
        # sizes overshoots to inf/NaN within three steps (seen at 32-48 px).
        return torch.optim.LBFGS(
            params, lr=lr, max_iter=1, history_size=history,
            tolerance_grad=-1.0, tolerance_change=0.0,
            line_search_fn="strong_wolfe" if line_search else None,
        )
    if name == "normalized_sgd":
        return NormalizedSGD(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}")


class NormalizedSGD(torch.optim.Optimizer):
    """x ← x − lr·g / mean|g| per sample: DeepDream's normalised gradient step.

    Dividing by each sample's mean absolute gradient makes the step size
    independent of the layer's activation scale, so one `lr` fits every layer.
    """

    def __init__(self, params, lr: float = 1.5):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                scale = g.abs().flatten(1).mean(1).clamp_min(1e-8).view(-1, *([1] * (g.dim() - 1)))
                p.add_(g / scale, alpha=-group["lr"])
        return loss
