"""What a report knows about a run: counts, rows, timing, read-only from the run's files.

Rows come from committed manifests (and, for counts only, from the durable journal
lines of shards in progress, as `nst status` counts them); tar files are never read
here. The number of planned samples is the plan's own `RunPlan.total`, as everywhere else.
"""

from __future__ import annotations

import os

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.run.folder.launches import read_launches
from pipeline.run.folder.plan import RunPlan, load_run
from pipeline.run.views.shard_state import ShardState, collect, shard_rows
from pipeline.run.views.status import throughput
from pipeline.run.task import OK
from pipeline.run.execute.options import LEASE_TTL


@dataclass
class RunView:
    """One consistent read of a run directory."""

    plan: RunPlan
    shards: list[ShardState]
    launches: list[dict]
    now: float
    committed_rows: list[dict] = field(default_factory=list)  # rows of committed shards only
    all_rows: list[dict] = field(default_factory=list)        # + durable journal rows of shards in progress

    @property
    def root(self) -> Path:
        return self.plan.root


def read_run(root: Path, lease_ttl: float = LEASE_TTL, now: float | None = None) -> RunView:
    plan = load_run(Path(root))
    shards = collect(plan, lease_ttl)
    view = RunView(plan, shards, read_launches(plan.root), time.time() if now is None else now)
    for s in shards:
        rows = shard_rows(plan.root, s)
        view.all_rows.extend(rows)
        if s.committed:
            view.committed_rows.extend(rows)
    return view


def final_loss(row: dict) -> float | None:
    """One number per sample to compare samples by: the total loss (stylize, texture), the mean
    total over layers (invert), the last objective (dream); None if the method records none."""
    losses = row.get("losses")
    if isinstance(losses, dict):
        if isinstance(losses.get("total"), (int, float)):
            return float(losses["total"])
        totals = [v["total"] for v in losses.values() if isinstance(v, dict) and isinstance(v.get("total"), (int, float))]
        if totals:
            return sum(totals) / len(totals)
    if isinstance(row.get("objective_last"), (int, float)):
        return float(row["objective_last"])
    return None


def device_label(row: dict) -> str:
    w = row.get("worker") or {}
    return f"{w.get('host', '?')}/{w.get('device', '?')}"


def figures(view: RunView) -> dict:
    """The header's numbers: counts, times, throughput, ETA, seconds per image by device."""
    planned = view.plan.total
    by_status = Counter(r["status"] for r in view.all_rows)
    ok = by_status.get(OK, 0)
    failed = sum(n for k, n in by_status.items() if k != OK)
    pending = planned - ok - failed
    complete = pending == 0 and all(s.committed for s in view.shards)
    timed = [r for r in view.all_rows if r.get("finished_at")]
    started = min((r.get("started_at", r["finished_at"]) for r in timed), default=None)
    if view.launches:
        started = min([started or float("inf"), *(launch["at"] for launch in view.launches)])
    ended = max((r["finished_at"] for r in timed), default=None)
    rate = throughput([t for s in view.shards for t in s.times], view.now)
    per_device: dict[str, list[float]] = defaultdict(list)
    for r in view.all_rows:
        if r["status"] == OK and isinstance(r.get("seconds"), (int, float)):
            per_device[device_label(r)].append(float(r["seconds"]))
    overall = ok / (ended - started) * 3600 if ok and started and ended and ended > started else None
    return {
        "task": view.plan.data.get("task"),
        "planned": planned, "ok": ok, "failed": failed, "pending": pending, "by_status": dict(by_status),
        "shards_total": len(view.shards), "shards_committed": sum(s.committed for s in view.shards),
        "complete": complete,
        "started_at": started, "ended_at": ended if complete else None, "last_finished_at": ended,
        "images_per_hour_recent": round(rate, 2) if rate else None,
        "images_per_hour_overall": round(overall, 2) if overall else None,
        "eta_seconds": None if complete or not rate else round(pending / rate * 3600, 1),
        "seconds_per_image": {d: {"samples": len(v), "mean": round(sum(v) / len(v), 3),
                                  "median": round(sorted(v)[len(v) // 2], 3)}
                              for d, v in sorted(per_device.items())},
        "stale_leases": sum(1 for s in view.shards if s.lease and s.lease.get("stale")),
        "active_leases": sum(1 for s in view.shards if s.lease),
    }


def failures(rows: list[dict]) -> dict[str, list[dict]]:
    """status -> failed rows (every status but ok), most frequent class first."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["key"]):
        if r["status"] != OK:
            groups[r["status"]].append(r)
    return dict(sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def input_path(source: str | None, data_root: str | None) -> str | None:
    """A sample's input file: `source` is relative to the run's DATA root (run.json's data_root)."""
    if source is None or data_root is None or os.path.isabs(source):
        return source
    return os.path.join(data_root, source)


def retry_input(row: dict, data_root: str | None = None) -> str | None:
    """The DATA line that redoes a failed row: its content file (its texture source for texture)."""
    if row.get("source"):
        return input_path(row["source"], data_root)
    styles = row.get("styles") or []
    return styles[0] if styles else None
