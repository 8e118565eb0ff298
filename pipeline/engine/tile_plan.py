"""Whether a stage runs whole or in tiles, at which tile side and with how much L-BFGS history.

Why a plan: the memory of an untiled evaluation grows with the image's activations, a tiled
one's with one tile's (pipeline/engine/tiles.py). What still grows with the image is the
pixel-side state: the image, its gradient, the optimiser's working vectors and the L-BFGS
history (2·history image-sized fp32 vectors: about 16 GB at 7680×4320 with history 20), and
the content layer's target. The plan counts all of it against the budget (the device's free
memory, capped by `max_memory`) and, when the history itself does not fit, shortens it (never
below MIN_HISTORY pairs) rather than refusing a print.

`tile`: "none" never tiles (a size that does not fit is refused); "auto" tiles a stage only
where the untiled estimate exceeds the budget, with the largest tile that fits; N tiles every
stage larger than N px a side (coarse stages that fit in one tile stay whole).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.engine.memory import BLOCK_WIDTHS, activation_channels_per_pixel, bytes_per_image, free_bytes
from pipeline.engine.tiles import MIN_TILE, halo_for, round_tile, tile_count
from pipeline.models.layers import layer_sequence

MIN_HISTORY = 5           # fewest L-BFGS pairs a huge image's history is cut to
AUTO_TILES = (2048, 1536, 1024, 768, 512, 384, 256, 128, 64)  # tile sides `auto` tries, largest first
PIXEL_STATE_VECTORS = 8   # image, gradient, previous gradient and step, direction, ...: fp32 copies of x


class TileMemoryError(MemoryError):
    """Nothing fits the budget, not even tiles: an out-of-memory error (batching.is_oom), raised before any work."""


@dataclass(frozen=True)
class TilePlan:
    """How one stage of `wh` runs: tile side (0: whole image), L-BFGS history, estimated bytes."""

    tile: int
    history: int
    estimate: int
    tiles: int = 1

    def record(self, halo: int) -> dict:
        return {"tile": self.tile, "halo": halo, "count": self.tiles, "lbfgs_history": self.history}


def budget(device: torch.device | str, max_memory: int | None, available: int | None = None) -> tuple[int, str]:
    """(bytes the estimate may use, where that figure comes from): free memory, capped by max_memory."""
    free = free_bytes(device) if available is None else available
    if max_memory is not None and max_memory < free:
        return int(max_memory), f"--max-memory {_gib(max_memory)}"
    return int(free), f"{_gib(free)} free on {torch.device(device).type}"


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _content_bytes_per_pixel(arch: str, layers) -> float:
    """The fp32 content target kept for the whole image: C / stride² floats per input pixel
    (counted for the deepest-but-one layer too, erring on the safe side: one layer of the list)."""
    stages = layer_sequence(arch)
    names = [n for _, n in stages]
    worst = 0.0
    for layer in layers:
        stride = 2 ** sum(1 for kind, n in stages[: names.index(layer) + 1] if kind == "pool")
        worst = max(worst, BLOCK_WIDTHS[min(4, int(layer[5]) - 1)] / stride**2 * 4)
    return worst


def tiled_bytes(arch: str, layers, wh: tuple[int, int], tile: int, precision: str, history: int) -> int:
    """Estimated peak bytes of one image evaluated in tiles of `tile` px: one crop's activations
    (tile + 2·halo a side, clipped to the image), the Grams, and the pixel-side state of the whole image."""
    w, h = wh
    halo, align = halo_for(layer_sequence(arch), layers)
    side = round_tile(tile, align) + 2 * halo
    crop = min(w, side) * min(h, side)
    elt = 2 if precision == "bf16" else 4
    acts = 4 * elt * activation_channels_per_pixel(arch, layers) * crop
    grams = 3 * 4 * sum(BLOCK_WIDTHS[min(4, int(n[5]) - 1)] ** 2 for n in layers)
    pixels = w * h * ((2 * history + PIXEL_STATE_VECTORS) * 3 * 4 + _content_bytes_per_pixel(arch, layers))
    return int(acts + grams + pixels)


def _history_that_fits(arch, layers, wh, tile, precision, history, room) -> int:
    """The longest history <= `history` whose tiled estimate fits in `room` bytes (0 if none >= MIN_HISTORY)."""
    for hist in range(history, MIN_HISTORY - 1, -1):
        if tiled_bytes(arch, layers, wh, tile, precision, hist) <= room:
            return hist
    return 0


def plan_stage(arch: str, layers, wh: tuple[int, int], precision: str, history: int, batch: int,
               tile, room: int) -> TilePlan | None:
    """The plan for `batch` images of `wh` in `room` bytes, or None if nothing fits."""
    w, h = wh
    untiled = batch * bytes_per_image(arch, layers, w, h, precision, history)
    _, align = halo_for(layer_sequence(arch), layers)
    if tile == "none" or (tile == "auto" and untiled <= room):
        return TilePlan(0, history, untiled) if untiled <= room else None
    if tile != "auto":
        side = round_tile(int(tile), align)
        if w <= side and h <= side:  # one tile holds it: whole
            return TilePlan(0, history, untiled) if untiled <= room else None
        candidates = [side]
    else:
        candidates = [t for t in AUTO_TILES if t < max(w, h)] or [MIN_TILE]
    for hist in (history, None):
        for t in candidates:
            if hist is None:
                hist_t = _history_that_fits(arch, layers, wh, t, precision, history, room // batch)
                if not hist_t:
                    continue
            else:
                hist_t = hist
            est = batch * tiled_bytes(arch, layers, wh, t, precision, hist_t)
            if est <= room:
                return TilePlan(round_tile(t, align), hist_t, est, tile_count(wh, t, align))
    return None


def largest_size(arch: str, layers, wh: tuple[int, int], precision: str, history: int, tile, room: int) -> int:
    """The longest side of an image of wh's aspect that `plan_stage` accepts in `room` bytes (0: none)."""
    aspect = min(wh) / max(wh)
    lo, hi = 0, 1 << 20
    while lo < hi:
        mid = (lo + hi + 1) // 2
        size = (mid, max(1, round(mid * aspect))) if wh[0] >= wh[1] else (max(1, round(mid * aspect)), mid)
        if plan_stage(arch, layers, size, precision, history, 1, tile, room) is not None:
            lo = mid
        else:
            hi = mid - 1
    return lo


def refuse(arch: str, layers, wh, precision: str, history: int, batch: int, tile, room: int, where: str):
    """The one-line refusal: what the size needs, the budget, the tile setting and the largest size it allows."""
    from pipeline.errors import BadInput

    w, h = wh
    untiled = batch * bytes_per_image(arch, layers, w, h, precision, history)
    if tile == "none":
        need = f"{_gib(untiled)} untiled (tile: none)"
    else:
        t = MIN_TILE if tile == "auto" else int(tile)
        need = (f"{_gib(batch * tiled_bytes(arch, layers, wh, t, precision, MIN_HISTORY))} even in {t} px tiles "
                f"with L-BFGS history {MIN_HISTORY} (tile: {tile})")
    if batch > 1 and plan_stage(arch, layers, wh, precision, history, 1, tile, room) is not None:
        most = max(b for b in range(1, batch) if plan_stage(arch, layers, wh, precision, history, b, tile, room))
        raise BadInput(f"batch_size {batch} at {w}x{h} px needs about {need}, {where}: "
                       f"the largest batch that fits is {most}")
    largest = largest_size(arch, layers, wh, precision, history, tile, room)
    hint = "" if tile != "none" else "; --set tile=auto evaluates larger sizes in tiles"
    raise BadInput(f"{w}x{h} px needs about {need}, {where}: the largest size the cap allows "
                   f"is {largest} (--size {largest}, batch 1){hint}")


def check_fits(arch: str, layers, wh: tuple[int, int], precision: str, history: int, batch: int,
               device: torch.device | str, available: int | None = None, tile="none",
               max_memory: int | None = None):
    """Refuse, before any work, what cannot fit: `batch` images of `wh` against the device's free
    memory (capped by max_memory). A CPU host that runs out is killed by the kernel (no OOM
    fallback can catch that), so this is the only place the user hears why. With tile "auto" or
    N a size that does not fit whole is planned in tiles (pipeline/engine/tile_plan.py); the
    message names the tile setting and the largest size (and batch) the budget allows.
    Returns the TilePlan."""
    from pipeline.engine.precision import resolve_precision

    precision = resolve_precision(precision, device)
    room, where = budget(device, max_memory, available)
    plan = plan_stage(arch, layers, wh, precision, history, batch, tile, room)
    if plan is None:
        refuse(arch, layers, wh, precision, history, batch, tile, room, where)
    return plan
