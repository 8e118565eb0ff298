"""Optimiser construction for pixel optimisation.

`iterations` counts loss-and-gradient evaluations (as the Keras notebook the seed-* presets reproduce counts
scipy's function evaluations); one step is one evaluation for every optimiser
here except torch_lbfgs, whose line search may take several.
"""

from __future__ import annotations

import torch

OPTIMIZER_NAMES = ("lbfgs", "adam", "torch_lbfgs", "normalized_sgd")  # what make_optimizer builds


def make_optimizer(name: str, x: torch.Tensor, lr: float = 1.0, history: int = 100, max_step: float = 64.0):
    """An optimiser over the image tensor x (B, 3, H, W); each .step(closure) evaluates once.

    'lbfgs' is the per-sample batched L-BFGS of pipeline.engine.lbfgs (the default);
    'torch_lbfgs' is torch.optim.LBFGS with a strong-Wolfe line search, kept as the
    plain baseline path for benchmarks (it couples a batch into one problem and a
    step may take several evaluations).
    """
    params = x if isinstance(x, (list, tuple)) else [x]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "lbfgs":
        from pipeline.engine.lbfgs import LBFGS

        return LBFGS(params[0], lr=lr, history=history, max_step=max_step)
    if name == "torch_lbfgs":
        # max_iter=1: each .step() is one L-BFGS iteration. Tolerances disabled as
        # in the classic tools: under bf16 the default ones stop after one
        # evaluation. Without the line search it overshoots to inf/NaN at the
        # reference's loss scale (seen at 32-48 px from noise).
        return torch.optim.LBFGS(
            params, lr=lr, max_iter=1, history_size=history,
            tolerance_grad=-1.0, tolerance_change=0.0, line_search_fn="strong_wolfe",
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
