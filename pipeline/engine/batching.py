"""Grouping images into batches that fit: size buckets, batch size from free memory, OOM fallback.

A batch optimises B images of one size in one forward/backward, so inputs are
bucketed by their working size (snapping sizes to a multiple of 8 or 16 makes
more of them share a bucket). B is chosen from the device's free memory and a
per-image estimate (activations kept for the backward pass + the L-BFGS history).
When a batch still runs out of memory it is split in halves; a single image
that does not fit is retried at a smaller size; only then is it recorded as
`failed_oom`. Out-of-memory never ends the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable, Sequence

import torch

from pipeline.engine.memory import bytes_per_image, free_bytes
from pipeline.errors import FAILED_OOM, OK

RESIZED = "resized"  # an outcome of the fallback, not a manifest status: the sample ran smaller


# ------------------------------------------------------------------ buckets

def snap_size(wh: tuple[int, int], multiple: int) -> tuple[int, int]:
    """(w, h) rounded down to a multiple (never below one multiple); 1 leaves it unchanged."""
    if multiple <= 1:
        return wh
    return tuple(max(multiple, v // multiple * multiple) for v in wh)  # type: ignore[return-value]


def bucket_by_size(items: Iterable[Any], size_of: Callable[[Any], Hashable]) -> dict[Hashable, list]:
    """Items grouped by size, buckets and items in first-seen order (deterministic)."""
    buckets: dict[Hashable, list] = {}
    for item in items:
        buckets.setdefault(size_of(item), []).append(item)
    return buckets


def make_batches(items: Iterable[Any], size_of: Callable[[Any], Hashable], batch_size: int | Callable[[Hashable], int]
                 ) -> list[tuple[Hashable, list]]:
    """(size, items) batches: each bucket cut into chunks of at most batch_size (an int or size -> int)."""
    out = []
    for size, group in bucket_by_size(items, size_of).items():
        b = batch_size(size) if callable(batch_size) else batch_size
        b = max(1, int(b))
        out.extend((size, group[i:i + b]) for i in range(0, len(group), b))
    return out


# ------------------------------------------------------------------- memory

def choose_batch_size(per_image: int, available: int, max_batch: int, headroom: float = 0.85) -> int:
    """Largest B <= max_batch with B·per_image within headroom·available (at least 1)."""
    if per_image <= 0:
        return max(1, max_batch)
    return max(1, min(max_batch, int(headroom * available // per_image)))


def auto_batch_size(net, layers, width: int, height: int, cfg, device: torch.device | str) -> int:
    """B for images of one size: the per-image estimate against this device's free memory (capped by
    cfg.max_memory), <= cfg.max_batch."""
    from pipeline.engine.precision import resolve_precision

    precision = resolve_precision(cfg.precision, device)
    per_image = bytes_per_image(net, layers, width, height, precision, cfg.lbfgs_history)
    available = free_bytes(device)
    cap = getattr(cfg, "max_memory", None)
    return choose_batch_size(per_image, available if cap is None else min(available, cap), cfg.max_batch)


# --------------------------------------------------------------- fallback

def is_oom(exc: BaseException) -> bool:
    """True for CUDA/host out-of-memory errors (torch raises these as RuntimeError subclasses)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    if isinstance(exc, MemoryError):
        return True
    msg = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg
                                              or "failed to allocate" in msg)


@dataclass
class Outcome:
    """What became of one item: its status, the size it ran at, and run()'s result for it."""

    item: Any
    status: str
    size: Any = None
    result: Any = None
    attempts: int = 1


def run_with_oom_fallback(items: Sequence[Any], size, run: Callable[[list, Any], list],
                          shrink: Callable[[Any], Any | None], on_oom: Callable[[str, int, Any], None] | None = None,
                          device: torch.device | str | None = None) -> list[Outcome]:
    """run(items, size) -> one result per item; on out-of-memory split, then shrink, then fail.

    shrink(size) gives the next smaller size to try for a single item, or None when
    there is none. on_oom(action, n, size) is told each fallback step ('split',
    'shrink', 'failed_oom') for logging. Outcomes come back in the items' order.
    """
    def release():
        if device is not None and torch.device(device).type == "cuda":
            torch.cuda.empty_cache()

    def attempt(group: list, at, tries: int) -> list[Outcome]:
        try:
            results = run(list(group), at)
        except Exception as exc:  # only out-of-memory is handled here
            if not is_oom(exc):
                raise
            release()
            if len(group) > 1:
                if on_oom:
                    on_oom("split", len(group), at)
                half = len(group) // 2
                return attempt(group[:half], at, tries + 1) + attempt(group[half:], at, tries + 1)
            smaller = shrink(at)
            if smaller is None:
                if on_oom:
                    on_oom("failed_oom", 1, at)
                return [Outcome(group[0], FAILED_OOM, at, None, tries)]
            if on_oom:
                on_oom("shrink", 1, smaller)
            return attempt(group, smaller, tries + 1)
        status = OK if at == size else RESIZED
        return [Outcome(item, status, at, res, tries) for item, res in zip(group, results)]

    return attempt(list(items), size, 1)


def shrink_by(factor: float = 0.75, minimum: int = 64, multiple: int = 1) -> Callable[[Any], Any | None]:
    """A shrink policy for square or (w, h) sizes: scale each side by `factor` (rounded), snap to
    `multiple`; None once the shorter side would fall below `minimum` (then the sample is failed_oom)."""
    def step(size):
        w, h = size if isinstance(size, tuple) else (size, size)
        nw, nh = snap_size((round(w * factor), round(h * factor)), multiple)
        if min(nw, nh) < minimum or (nw, nh) == (w, h):
            return None
        return (nw, nh) if isinstance(size, tuple) else nw
    return step
