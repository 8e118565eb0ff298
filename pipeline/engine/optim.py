"""Optimiser construction for pixel optimisation.

One step = one loss-and-gradient evaluation for every optimiser here, so
`iterations` counts evaluations (as the reference counts scipy's function
evaluations).
"""

from __future__ import annotations

import torch


def make_optimizer(name: str, params, lr: float = 1.0, history: int = 100):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "lbfgs":
        # max_iter=1: each .step() evaluates once and updates once, so evaluation
        # counting, logging and snapshots happen between steps. Tolerances are
        # disabled as in the classic tools: under bf16 the default ones stop
        # after a single evaluation.
        return torch.optim.LBFGS(
            params, lr=lr, max_iter=1, max_eval=1, history_size=history,
            tolerance_grad=-1.0, tolerance_change=0.0, line_search_fn=None,
        )
    raise ValueError(f"unknown optimizer {name!r}")
