"""Evaluations-to-quality: the classic yardstick, and the production schedule measured against it.

The quality bar of a sample is the fp32 loss that the *classic* run reaches after N
evaluations (500 in `make bench`): torch.optim.LBFGS(lr=1, history_size=100) with no
line search and the tolerances off, one image at a time, in fp32, from the same start
and on the same loss as production. That is what neural-style and neural-style-pt run.
The production row runs the preset's stage plan (`coarse_stages`) on a batch, checks
every sample's fp32 loss at regular points of the full-size stage, and reports the
FLOP-weighted evaluations (an evaluation at scale s of the size counts s², its pixel
ratio) and the seconds it needed until every sample was at or below its bar.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from pipeline.bench.flops import deepest, flops_per_evaluation
from pipeline.engine.loop import RenderOptions, logging_step, render

CLASSIC_HISTORY = 100  # torch.optim.LBFGS's default history_size, as neural-style(-pt) use it


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def classic_path(work, n: int, iterations: int, progress, peak=None,
                 every: int = 25, jitter: float = 0.0) -> tuple[dict, torch.Tensor]:
    """One image at a time, fp32, NCHW, torch.optim.LBFGS without line search, from the preset's start.

    jitter > 0 adds seeded Gaussian noise of that many grey levels to the start: the same
    algorithm from an imperceptibly different start, whose final loss against the bar
    measures how much of the bar is one trajectory's luck (the problem is not convex).

    The network stops at the deepest loss layer (neural-style-pt drops the layers after
    its last loss module too), so the comparison is of the optimisation, not truncation.
    The row's `curve` holds each sample's loss every `every` evaluations (the loss each
    evaluation computed, read after the timing).
    """
    net, dev = work.net, work.device
    outs = []
    evals_total = 0
    seen: list[dict[int, torch.Tensor]] = []
    objective = work.objective(0, 1)
    _sync(dev)
    start = time.perf_counter()
    for i in range(n):
        objective = work.objective(i, i + 1)
        x = work.start[i:i + 1].clone()
        if jitter:
            noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1000 + i))
            x += (jitter * work.pre.unit) * noise.to(x.device)
        x.requires_grad_(True)
        opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=CLASSIC_HISTORY, line_search_fn=None,
                                tolerance_grad=-1.0, tolerance_change=-1.0)
        evals = 0
        seen.append({})

        def closure():
            nonlocal evals
            evals += 1
            opt.zero_grad()
            loss = objective(net(x, objective.layers), x).sum()
            loss.backward()
            if evals % every == 0:
                seen[-1][evals] = loss.detach()
            return loss

        while evals < iterations:
            opt.step(closure)
            if evals % 50 == 0:
                progress(f"classic image {i + 1}/{n}: {evals}/{iterations} evaluations")
        evals_total += evals
        outs.append(x.detach())
    _sync(dev)
    seconds = time.perf_counter() - start
    x = torch.cat(outs)
    layer = deepest(net, objective.layers)
    steps = sorted(set.intersection(*(set(d) for d in seen))) if seen else []
    row = dict(path="classic (torch L-BFGS, no line search)", precision="fp32", batch=1, images=n, jitter=jitter,
               evaluations=evals_total, seconds=seconds, peak_mib=peak() if peak else float("nan"),
               losses=work.final_losses(x, 0), forward_to=layer, backward_to=layer,
               classic_curve=[[e, [float(d[e]) for d in seen]] for e in steps])
    return row, x


class _Reached(Exception):
    """Raised from a check inside the full-size stage: every sample is at its bar."""

    def __init__(self, evaluations: int, x: torch.Tensor):
        super().__init__(evaluations)
        self.evaluations, self.x = evaluations, x


def schedule_path(works: list, plan: list[tuple[int, int]], batch: int, precision: str, history: int,
                  progress, check_every: int, bar: list[float] | None = None, compile: str = "none",
                  label: str = "production", peak=None) -> tuple[dict, dict[float, torch.Tensor]]:
    """The production schedule on a batch: plan = [(evaluations, size), ...], coarsest first.

    works[i] is the Workload at plan[i]'s size (style targets and content at that size);
    each stage starts from the bilinearly upsampled result of the previous one. Every
    `check_every` evaluations of the full-size stage the images are evaluated in fp32
    (the check's time is not counted): the row's `curve` of [full-size-equivalent
    evaluations, per-sample losses]. With a `bar` (per-sample losses; samples beyond it
    are not checked) the run stops at the first check where every checked sample is at or
    below it, so a row costs what reaching the bar costs. Returns the row and the checked
    images by their full-size-equivalent evaluations (the last is the final).
    """
    full = works[-1]
    dev = full.device
    x = None
    stage_seconds, weighted, flops, done = [], 0.0, 0.0, []
    curve: list[list] = []
    images: dict[float, torch.Tensor] = {}
    for i, ((n, size), work) in enumerate(zip(plan, works)):
        last = i == len(plan) - 1
        objective = work.objective(0, batch)
        x0 = work.start[:batch] if x is None else F.interpolate(x, size=(size, size), mode="bilinear",
                                                                  align_corners=False)
        checking = [0.0]

        def on_log(e, total, rows, size=size):
            progress(f"{label} {precision} batch {batch}, {size}px: {e}/{total} evaluations")

        def check(e, xs, base=weighted, checking=checking):
            _sync(dev)
            t = time.perf_counter()
            losses = full.final_losses(xs, 0)
            curve.append([base + e, losses])
            images[base + e] = xs.clone()
            checking[0] += time.perf_counter() - t
            if bar is not None and all(v <= b for v, b in zip(losses, bar)):
                raise _Reached(e, xs.clone())

        _sync(dev)
        t0 = time.perf_counter()
        try:
            options = RenderOptions(n, optimizer="lbfgs", lr=work.cfg.learning_rate, history=history,
                                    precision=precision, log_every=max(1, n // 4),
                                    max_step=work.cfg.lbfgs_max_step * work.pre.unit, compile=compile,
                                    snapshot_every=check_every if last else 0)
            result = render(work.net, objective, x0, options, logging_step(on_log, check if last else None))
            x, ran = result.x, n
        except _Reached as stop:
            x, ran = stop.x, stop.evaluations
        _sync(dev)
        stage_seconds.append(time.perf_counter() - t0 - checking[0])
        done.append(ran)
        layer = deepest(work.net, objective.layers)
        flops += flops_per_evaluation(work.net, layer, layer, size, size) * ran
        if not last:
            weighted += ran * (size / full.size) ** 2
    peak_mib = peak() if peak else float("nan")
    losses = full.final_losses(x, 0)
    if not curve or curve[-1][0] != weighted + done[-1]:
        curve.append([weighted + done[-1], losses])
        images[weighted + done[-1]] = x
    layer = deepest(full.net, full.objective(0, 1).layers)
    evals = sum(done)
    row = dict(path=label, precision=precision, batch=batch, images=batch, evaluations=evals * batch,
               seconds=sum(stage_seconds), peak_mib=peak_mib, losses=losses, forward_to=layer, backward_to=layer,
               flops_per_eval=int(flops / evals), stages=[[e, size] for e, (_, size) in zip(done, plan)],
               planned_stages=[[n, size] for n, size in plan], stage_seconds=stage_seconds,
               weighted_evaluations=weighted + done[-1], curve=curve, stopped_at_bar=done[-1] < plan[-1][0])
    return row, images


def at_quality(classic: dict, row: dict, bar: list[float] | None = None) -> dict:
    """When every sample of `row` is at or below the classic row's final loss (its bar), or `bar`.

    quality_evals: full-size-equivalent evaluations at the first check where that holds;
    quality_seconds_per_image: the coarse stages' time plus the full-size stage's time
    scaled by the share of its evaluations done by then, per image; images_per_hour_at_quality
    = 3600 / that; quality_speedup: the classic's seconds per image over it. None where the
    row never got there.
    """
    bar = classic["losses"] if bar is None else bar
    curve = row.get("curve") or []
    coarse_equiv = row["weighted_evaluations"] - row["stages"][-1][0]
    for evals, losses in curve:
        if all(v <= b for v, b in zip(losses, bar)):
            done_full = evals - coarse_equiv
            seconds = sum(row["stage_seconds"][:-1]) + row["stage_seconds"][-1] * done_full / row["stages"][-1][0]
            per_image = seconds / row["images"]
            classic_per_image = classic["seconds"] / classic["images"]
            return dict(quality_evals=evals, quality_seconds_per_image=per_image,
                        images_per_hour_at_quality=3600.0 / per_image,
                        quality_speedup=classic_per_image / per_image)
    return dict(quality_evals=None, quality_seconds_per_image=None, images_per_hour_at_quality=None,
                quality_speedup=None)


def save_side_by_side(work, classic_x: torch.Tensor, prod_x: torch.Tensor, path) -> None:
    """One row per sample: the content, the classic run's result, production's at the bar or band (JPEG)."""
    from PIL import Image

    from pipeline.pixels import to_pil

    n = min(classic_x.shape[0], prod_x.shape[0])
    side = work.size
    sheet = Image.new("RGB", (3 * side, n * side), "white")
    for i in range(n):
        for j, x in enumerate((work.content_net[i:i + 1], classic_x[i:i + 1], prod_x[i:i + 1])):
            sheet.paste(to_pil(work.pre.to_pixels(x.detach().float().cpu()).clamp(0, 255)), (j * side, i * side))
    sheet.save(path, quality=92)
