"""What a run will cost before it is launched: samples, working sizes, device-hours.

The rate is seconds per pixel-evaluation (one loss-and-gradient evaluation of one
image pixel), from the run's own finished samples when it has some on this kind of
device, else from the newest matching benchmark record (`nst bench --save`). The cost
of a sample is taken as proportional to its pixels x evaluations, each stage of a
multi-resolution schedule at its own size: a first-order model (a batch that fills
the device better runs faster per pixel), so the figure says where it came from.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from pipeline.methods.stages import pixel_evaluations
from pipeline.run.folder.plan import RunPlan
from pipeline.run.task import OK, Sample
from pipeline.resources import data_dir

BENCH_RESULTS = data_dir("benchmarks/results")
HEADER_SAMPLE = 2000  # working sizes are read from at most this many image headers, evenly spaced
HEADER_SHARDS = 40    # ... taken from at most this many shards


def gpu_present() -> bool:
    """Whether `--device auto` will find a CUDA device, for the estimate only. torch answers
    when it is loaded already; otherwise the NVIDIA driver's GPU list and CUDA_VISIBLE_DEVICES do,
    so `--plan-only` on a login node does not load torch (about 700 MB) to print a figure."""
    import sys

    if "torch" in sys.modules:
        return sys.modules["torch"].cuda.is_available()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    try:
        return bool(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return False


def header_samples(plan: RunPlan, limit: int = HEADER_SAMPLE) -> list[tuple[Sample, float]]:
    """At most `limit` samples spread over the plan, each with the number of planned samples it
    stands for. Whole shards are read, at most HEADER_SHARDS of them
    evenly spaced (a size-ordered plan keeps each size in its own shards, so evenly spaced shards
    are a stratified sample), so the estimate never holds or reads every row of a large plan."""
    shards = [s for s in plan.shards if s["count"]]
    if not shards:
        return []
    chosen = shards[::max(1, -(-len(shards) // HEADER_SHARDS))]
    per_shard = max(1, limit // len(chosen))
    stands_for = sum(s["count"] for s in shards) / sum(s["count"] for s in chosen)
    picked = []
    for shard in chosen:
        samples = plan.shard_samples(shard)
        step = max(1, -(-len(samples) // per_shard))
        weight = stands_for * len(samples) / len(samples[::step])
        picked.extend((s, weight) for s in samples[::step])
    return picked


@dataclass
class Estimate:
    samples: int
    pending: int
    iterations: int
    sizes: Counter            # (w, h) or None (unreadable header) -> samples, scaled to the whole plan
    headers_read: int
    pixel_evals: float        # of the pending samples
    seconds_per_mpe: float | None  # seconds per million pixel-evaluations
    source: str
    device: str

    @property
    def device_hours(self) -> float | None:
        return None if self.seconds_per_mpe is None else self.pixel_evals / 1e6 * self.seconds_per_mpe / 3600

    def lines(self) -> list[str]:
        sizes = ", ".join(f"{'unreadable' if wh is None else f'{wh[0]}x{wh[1]}'} ({n})"
                          for wh, n in self.sizes.most_common(4))
        if len(self.sizes) > 4:
            sizes += f", ... ({len(self.sizes)} sizes)"
        scaled = "" if self.headers_read >= self.samples else f" (from {self.headers_read} sampled headers)"
        out = [f"estimate   {self.samples} samples, {self.pending} pending; {self.iterations} evaluations each; "
               f"working sizes {sizes}{scaled}"]
        if self.device_hours is None:
            out.append(f"           {self.device}: no rate to estimate from ({self.source})")
        else:
            out.append(f"           {self.device}: {self.device_hours:.3g} device-hours "
                       f"({self.seconds_per_mpe:.3g} s per million pixel-evaluations, from {self.source})")
        return out


def _done_rows(plan: RunPlan, states) -> Iterator[dict]:
    """The durable rows of the shards that have any, one shard at a time."""
    from pipeline.run.views.shard_state import shard_rows

    for st in states:
        if st.done:
            yield from shard_rows(plan.root, st)


def schedule(config: dict) -> dict:
    """The run's stage settings as keyword arguments of `pixel_evaluations`."""
    return dict(coarse_stages=config.get("coarse_stages") or [], base=config.get("stage_base"),
                base_share=config.get("stage_base_share") or 0.4)


def measured_rate(rows: Iterable[dict], device: str, stages: dict | None = None) -> tuple[float, int] | None:
    """(seconds per million pixel-evaluations, samples) over this run's ok rows on `device` (cpu/cuda);
    stages: the run's `schedule`."""
    seconds = mpe = 0.0
    n = 0
    for r in rows:
        dev = str((r.get("worker") or {}).get("device", ""))
        if r["status"] != OK or not dev.startswith(device) or not r.get("size") or not r.get("iterations"):
            continue
        seconds += float(r.get("seconds") or 0)
        mpe += pixel_evaluations(r["iterations"], wh=tuple(r["size"]), **(stages or schedule({}))) / 1e6
        n += 1
    return (seconds / mpe, n) if n and mpe and seconds else None


def benchmark_rate(config: dict, device: str, results: Path = BENCH_RESULTS) -> tuple[float, str] | None:
    """(seconds per million pixel-evaluations, description) from the newest benchmark record for this
    device kind: its production row at the config's precision, largest batch; records of the config's
    pooling are preferred (GPU records that do not say are taken as any)."""
    want_precision = "fp32" if config.get("precision") == "fp32" else "bf16"
    best = None
    for path in sorted(results.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if rec.get("device_type") != device or "rows" not in rec:
            continue
        opts = rec.get("options", {})
        rows = [r for r in rec["rows"] if r.get("path") == "production" and r.get("precision") == want_precision]
        if not rows:
            continue
        row = max(rows, key=lambda r: r["batch"])
        pooling = opts.get("pooling")
        rank = (pooling in (None, config.get("pooling")), rec.get("date", ""))
        # full-size-equivalent evaluations per image where the row counts them (a schedule's coarse
        # stages at their pixel share; a row that stopped at the quality bar ran fewer than asked)
        mpe = opts["size"] * opts["size"] * row.get("weighted_evaluations", opts["iterations"]) / 1e6
        desc = (f"benchmark record {path.parent.parent.name}/{path.parent.name}/{path.name} ({rec.get('date')}, {rec.get('device')}, "
                f"production {row['precision']} batch {row['batch']}, {opts['size']} px)")
        if best is None or rank > best[0]:
            best = (rank, row["seconds_per_image"] / mpe, desc)
    return None if best is None else (best[1], best[2])


def estimate(plan: RunPlan, device: str, working_size: Callable[[Sample], tuple[int, int] | None],
             results: Path = BENCH_RESULTS) -> Estimate:
    """Cost of the plan's pending samples on `device` ("cpu" or "cuda")."""
    from pipeline.run.views.shard_state import collect

    config = plan.data.get("config", {})
    iterations = int(config.get("iterations") or 0)
    stages = schedule(config)
    states = collect(plan)
    pending = sum(st.planned - st.done for st in states)
    picked = header_samples(plan)
    sizes: Counter = Counter()
    pixel_evals_sum = weight = 0.0
    for sample, stands_for in picked:
        wh = working_size(sample)
        sizes[wh] += stands_for
        if wh is not None:
            pixel_evals_sum += pixel_evaluations(iterations, wh=wh, **stages) * stands_for
            weight += stands_for
    sizes = Counter({wh: round(n) for wh, n in sizes.items()})
    pixel_evals = (pixel_evals_sum / weight if weight else 0.0) * pending
    own = measured_rate(_done_rows(plan, states), device, stages)
    if own is not None:
        rate, source = own[0], f"this run's measured rate ({own[1]} samples on {device})"
    else:
        bench = benchmark_rate(config, device, results)
        rate, source = bench if bench else (None, f"no finished samples on {device} and no benchmark record "
                                                   f"for {device} in {results}")
    return Estimate(plan.total, pending, iterations, sizes, len(picked), pixel_evals, rate, source, device)


def estimate_cost(plan: RunPlan, task, device: str = "auto") -> Estimate:
    """The cost of `plan`'s pending samples on `device` (auto: cuda if present): an Estimate whose
    working sizes come from the task's `batch_key` (the image headers) where it has one."""
    kind = ("cuda" if gpu_present() else "cpu") if device == "auto" else \
        ("cuda" if device.startswith("cuda") else "cpu")

    def working_size(sample):
        key = task.batch_key(sample)
        return tuple(key[0]) if key else None

    return estimate(plan, kind, working_size)
