"""The numbers of a run, read only from its files: counts, rate, ETA, errors, the wids shard index.

Used by `nst status`, by the final summary of `nst stylize` and by the SLURM requeue decision.
Reading never changes anything, so it is safe while workers run.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from pipeline.io.atomic import atomic_write_text
from pipeline.io.shards import commit_holds
from pipeline.run.folder.plan import RunPlan
from pipeline.run.views.shard_state import collect
from pipeline.run.task import OK
from pipeline.slurm_env import worker_label
from pipeline.run.execute.options import LEASE_TTL
from pipeline.progress import format_duration


def throughput(times: list[tuple], now: float) -> float | None:
    """Samples per hour over the last hour (else the last 50 points): samples / (last finish - first start).

    Points are single samples (journals) or whole committed shards (finish, start, count);
    starts count, not only finishes: the samples of one batch finish together.
    """
    timed = sorted(times)
    recent = [t for t in timed if t[0] >= now - 3600] or timed[-50:]
    if not recent:
        return None
    span = recent[-1][0] - min(start for _, start, _ in recent)
    return sum(n for _, _, n in recent) / span * 3600 if span > 0 else None


def summarize(plan: RunPlan, lease_ttl: float = LEASE_TTL, now: float | None = None) -> dict:
    """The figures `nst status --json` prints."""
    now = time.time() if now is None else now
    shards = collect(plan, lease_ttl)
    planned = plan.total
    by_status: Counter = Counter()
    errors: Counter = Counter()
    times = []
    for s in shards:
        by_status.update(s.counts)
        errors.update(s.errors)
        times.extend(s.times)
    ok = by_status.get(OK, 0)
    failed = sum(n for k, n in by_status.items() if k != OK)
    pending = planned - ok - failed
    rate = throughput(times, now)
    return {
        "out": str(plan.root),
        "task": plan.data["task"],
        "planned": planned,
        "ok": ok,
        "failed": failed,
        "pending": pending,
        "by_status": dict(by_status),
        "shards_done": sum(s.committed and s.done == s.planned for s in shards),
        "shards_total": len(shards),
        "active_leases": [{"shard": s.name, "holder": s.lease.get("holder"), "host": s.lease.get("host"),
                           "age_s": round(now - s.lease["heartbeat"], 1), "stale": s.lease["stale"],
                           "heartbeat": s.lease["heartbeat"], "slurm": worker_label(s.lease),
                           **{k: v for k, v in s.lease.items() if k.startswith("slurm_")}}
                          for s in shards if s.lease],
        "images_per_hour": round(rate, 2) if rate else None,
        "eta_seconds": round(pending / rate * 3600, 1) if rate and pending else (0.0 if not pending else None),
        "top_errors": [{"error": e, "count": n} for e, n in errors.most_common(5)],
        "complete": pending == 0 and all(s.committed for s in shards),
    }


def write_shardindex(plan: RunPlan) -> Path:
    """DIR/shardindex.json for `wids` (shards with at least one sample), from the commit records."""
    shardlist = []
    for shard in plan.shards:
        rec, problem = commit_holds(plan.shard_paths(shard))
        if problem is not None:
            raise RuntimeError(f"shard {shard['name']} is not committed: {problem}")
        if rec["tar"]["samples"]:
            shardlist.append({"url": rec["tar"]["path"], "nsamples": rec["tar"]["samples"],
                              "filesize": rec["tar"]["size"], "md5sum": rec["tar"]["md5"]})
    index = {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": plan.data["task"],
             "shardlist": shardlist}
    path = plan.root / "shardindex.json"
    atomic_write_text(path, json.dumps(index, indent=1))
    return path


def format_table(summary: dict) -> str:
    """Human-readable status / final summary."""
    rate = summary["images_per_hour"]
    eta = summary["eta_seconds"]
    lines = [
        f"run        {summary['out']}  ({summary['task']})",
        f"samples    {summary['planned']} planned   {summary['ok']} ok   {summary['failed']} failed   "
        f"{summary['pending']} pending",
        f"shards     {summary['shards_done']}/{summary['shards_total']} committed",
        f"rate       {f'{rate:.1f} images/hour' if rate else '-'}   ETA {format_duration(eta)}",
    ]
    if summary["by_status"]:
        lines.append("status     " + "   ".join(f"{k}: {v}" for k, v in sorted(summary["by_status"].items())))
    for lease in summary["active_leases"]:
        job = f" slurm job {lease['slurm']}" if lease.get("slurm") else ""
        flag = "  STALE: holder gone or silent; another worker will take it over" if lease.get("stale") else ""
        lines.append(f"working    {lease['shard']} by {lease['holder']}{job} (heartbeat {lease['age_s']}s ago)"
                     f"{flag}")
    for err in summary["top_errors"]:
        lines.append(f"error      {err['count']} x {err['error']}")
    return "\n".join(lines)
