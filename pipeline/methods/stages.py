"""The multi-resolution schedule: how many evaluations run at which size.

Two kinds, one plan: `coarse_stages` (fractions of the output size) or, with `stage_base`,
absolute stages: a fixed base size, then sqrt(2) steps up to the output size (the scales
of crowsonkb/style-transfer-pytorch), so the composition is decided at one size whatever
the output size. A leaf module, so the run that executes the schedule (methods/stylize.py),
the benchmark and the cost estimate (run/views/estimate.py) all read one plan.
"""

from __future__ import annotations

MIN_STAGE_SIDE = 32  # VGG16 pools five times
GROWTH = 2 ** 0.5


def absolute_sides(base: int, longest: int, growth: float = GROWTH) -> list[int]:
    """Longest sides of the stages: base, base·√2, base·2, ... while under `longest`, then `longest`."""
    sides, side = [], float(base)
    while round(side) < longest:
        sides.append(round(side))
        side *= growth
    return sides + [longest]


def _absolute_plan(iterations: int, wh: tuple[int, int], base: int, base_share: float):
    sides = absolute_sides(base, max(wh))
    if len(sides) == 1 or iterations < len(sides):
        return [(iterations, wh)]
    first = max(1, round(iterations * base_share))
    rest = iterations - first
    each = rest // (len(sides) - 1)
    counts = [first] + [each] * (len(sides) - 1)
    counts[-1] += rest - each * (len(sides) - 1)
    plan = []
    for n, side in zip(counts, sides):
        scale = side / max(wh)
        plan.append((n, wh if side == max(wh) else (max(1, round(wh[0] * scale)), max(1, round(wh[1] * scale)))))
    # a stage too small for the network gives its evaluations to the next
    while len(plan) > 1 and min(plan[0][1]) < MIN_STAGE_SIDE:
        n, _ = plan.pop(0)
        plan[0] = (plan[0][0] + n, plan[0][1])
    return plan


def stage_plan(iterations: int, coarse_stages: list, wh: tuple[int, int], base: int | None = None,
               base_share: float = 0.4) -> list[tuple[int, tuple[int, int]]]:
    """(evaluations, (w, h)) per stage, coarsest first, the last at wh; evaluations sum to `iterations`.

    With `base` and no `coarse_stages` (absolute stages): round(base_share·iterations) evaluations at longest side
    `base`, the rest shared equally by the sqrt(2) steps up to wh (the last takes what does
    not divide); an output no larger than `base` is one stage. Otherwise each `coarse_stages`
    entry [scale, share] spends round(share·iterations) evaluations at that scale of the
    size. A stage whose image would be under 32 px, or that would get no evaluation, is
    skipped and its evaluations run at the next stage, which always keeps at least one.
    """
    if base is not None and not coarse_stages:
        return _absolute_plan(iterations, wh, base, base_share)
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


def pixel_evaluations(iterations: int, coarse_stages: list, wh: tuple[int, int], base: int | None = None,
                      base_share: float = 0.4) -> int:
    """Pixels × evaluations of one image of working size wh over every stage (the cost's first-order measure)."""
    return sum(n * w * h for n, (w, h) in stage_plan(iterations, coarse_stages, wh, base, base_share))
