"""The multi-resolution schedule (`coarse_stages`): how many evaluations run at which size.

A leaf module, so the run that executes the schedule (methods/stylize.py), the benchmark
and the cost estimate (run/views/estimate.py) all read one plan.
"""

from __future__ import annotations

MIN_STAGE_SIDE = 32  # VGG16 pools five times


def stage_plan(iterations: int, coarse_stages: list, wh: tuple[int, int]) -> list[tuple[int, tuple[int, int]]]:
    """(evaluations, (w, h)) per stage, coarsest first, the last at wh; evaluations sum to `iterations`.

    Each `coarse_stages` entry [scale, share] spends round(share·iterations) evaluations at
    that scale of the size. A stage whose image would be under 32 px, or that would get no
    evaluation, is skipped and its evaluations run at full size, which always keeps at least one.
    """
    stages: list[tuple[int, tuple[int, int]]] = []
    left = iterations
    for scale, share in coarse_stages:
        cw, ch = round(wh[0] * scale), round(wh[1] * scale)
        n = min(left - 1, round(iterations * share))
        if min(cw, ch) < MIN_STAGE_SIDE or n <= 0:
            continue
        stages.append((n, (cw, ch)))
        left -= n
    return stages + [(left, wh)]


def pixel_evaluations(iterations: int, coarse_stages: list, wh: tuple[int, int]) -> int:
    """Pixels × evaluations of one image of working size wh over every stage (the cost's first-order measure)."""
    return sum(n * w * h for n, (w, h) in stage_plan(iterations, coarse_stages, wh))
