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

from pipeline.engine.compiled import COMPILE_MODES, LossAndGrad, forward_parts, resolve_compile
from pipeline.engine.objectives import Objective
from pipeline.engine.optim import OPTIMIZER_NAMES, make_optimizer
from pipeline.engine.precision import fast_fp32_matmul, use_channels_last


@dataclass
class RenderResult:
    x: torch.Tensor                       # final image(s) in network space, (B, 3, H, W)
    losses: list[dict[str, float]]        # per sample: each term and "total", at the final image
    evaluations: int
    seconds: float
    history: list[tuple[int, list[float]]] = field(default_factory=list)  # (evals, per-sample totals)
    compiled: str = "none"                # torch.compile mode the evaluations ran under ("none": eager)
    tiles: dict | None = None             # tiled evaluation: tile side, halo, tiles per pass (None: whole image)


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


@dataclass(frozen=True)
class RenderOptions:
    """How one render runs, validated once here instead of at every caller.

    `iterations` counts loss-and-gradient evaluations. maximize=True ascends the
    objective (DeepDream). max_step bounds the per-pixel L-BFGS step in network
    units. compile picks eager or a torch.compile mode (pipeline.engine.compiled;
    'auto' compiles where it was measured to pay). log_every and snapshot_every
    (0: never) say at which evaluations `on_step` gets losses and a snapshot flag.
    tile > 0 evaluates in tiles of that many pixels a side (pipeline.engine.tiles:
    the same loss and gradient, one tile's activations in memory at a time; eager).
    """

    iterations: int
    optimizer: str = "lbfgs"
    lr: float = 1.0
    history: int = 100
    precision: str = "fp32"
    log_every: int = 10
    snapshot_every: int = 0
    maximize: bool = False
    max_step: float = 64.0
    compile: str = "none"
    tile: int = 0

    def __post_init__(self):
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations!r}")
        if self.optimizer not in OPTIMIZER_NAMES:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_NAMES)}, got {self.optimizer!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.history < 1:
            raise ValueError(f"history must be >= 1, got {self.history!r}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {self.log_every!r}")
        if self.snapshot_every < 0:
            raise ValueError(f"snapshot_every must be >= 0, got {self.snapshot_every!r}")
        if not self.max_step > 0:
            raise ValueError(f"max_step must be > 0, got {self.max_step!r}")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {self.compile!r}")
        if self.tile < 0:
            raise ValueError(f"tile must be >= 0 (0: untiled), got {self.tile!r}")


@dataclass
class StepInfo:
    """What `on_step` sees after each optimiser step.

    x is the live image (B, 3, H, W) in network space; the callback runs under
    no_grad and may edit it in place (jitter, clamping) or clone it (snapshots).
    losses (per sample, as in RenderResult) is set only at logging evaluations,
    so the host waits for the device only there; snapshot is True at snapshot ones.
    """

    step: int
    evaluations: int                      # done so far, capped at total
    total: int
    x: torch.Tensor
    losses: list[dict[str, float]] | None = None
    snapshot: bool = False


def compile_mode(net, x0: torch.Tensor, options: RenderOptions) -> str:
    """The torch.compile mode `render(net, ..., x0, options)` will run under ('none': eager)."""
    if options.tile:
        return "none"  # tiles run eager: each crop has its own shape
    pixel_evals = options.iterations * x0.numel() / max(1, x0.shape[1])
    return resolve_compile(options.compile, x0.device, pixel_evals, getattr(net, "pooling", "avg"))


def render(net, objective: Objective, x0: torch.Tensor, options: RenderOptions,
           on_step: Callable[[StepInfo], None] | None = None) -> RenderResult:
    """Run `options.iterations` loss-and-gradient evaluations on a copy of x0.

    One callback serves logging, snapshots and in-place edits between steps, so
    every method drives the same loop (see StepInfo).
    """
    o = options
    iterations, log_every, snapshot_every = o.iterations, o.log_every, o.snapshot_every
    x = x0.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    opt = make_optimizer(o.optimizer, x, lr=o.lr, history=o.history, max_step=o.max_step)
    mode = compile_mode(net, x0, options)
    channels_last = use_channels_last(o.precision, x.device)
    if o.tile:
        from pipeline.engine.tiles import TiledLossAndGrad

        loss_and_grad = TiledLossAndGrad(net, objective, o.precision, channels_last, o.tile)
    else:
        loss_and_grad = LossAndGrad(net, objective, o.precision, channels_last, mode)
    sign = -1.0 if o.maximize else 1.0
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
        with fast_fp32_matmul(o.precision, x.device):
            opt.step(closure)
        steps += 1
        if on_step is None:
            continue
        info = StepInfo(step=steps, evaluations=min(evals, iterations), total=iterations, x=x)
        if evals >= next_log or evals >= iterations:
            info.losses = _per_sample(last_parts)
            history_rows.append((evals, [r["total"] for r in info.losses]))
            next_log = (evals // log_every + 1) * log_every
        if snapshot_every and evals >= next_snap and evals < iterations:
            info.snapshot = True
            next_snap = (evals // snapshot_every + 1) * snapshot_every
        with torch.no_grad():
            on_step(info)
    if o.tile:
        with fast_fp32_matmul(o.precision, x.device):
            final = _per_sample(loss_and_grad.evaluate(x.detach()))
        tiles = {"tile": loss_and_grad.tile, "halo": loss_and_grad.halo, "count": len(loss_and_grad.grid(x))}
    else:
        final = _per_sample(evaluate(net, objective, x.detach(), o.precision))
        tiles = None
    seconds = time.perf_counter() - start
    return RenderResult(x=x.detach(), losses=final, evaluations=evals, seconds=seconds, history=history_rows,
                        compiled=loss_and_grad.mode, tiles=tiles)


def logging_step(on_log: Callable[[int, int, list[dict[str, float]]], None] | None = None,
                 on_snapshot: Callable[[int, torch.Tensor], None] | None = None) -> Callable[[StepInfo], None] | None:
    """An on_step that calls on_log(done, total, losses) at logging steps and on_snapshot(done, x) at snapshot ones."""
    if on_log is None and on_snapshot is None:
        return None

    def on_step(info: StepInfo) -> None:
        if on_log is not None and info.losses is not None:
            on_log(info.evaluations, info.total, info.losses)
        if on_snapshot is not None and info.snapshot:
            on_snapshot(info.evaluations, info.x.detach())

    return on_step
