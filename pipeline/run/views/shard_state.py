"""Each shard's state, read only from the run's files: commit record, journal, lease.

run/views/status.py sums it up and a worker's progress bar starts from `done_count`. A committed
shard's rows are not read (its commit record carries its counts, errors and times). Reading never
changes anything, so it is safe while workers run.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from pipeline.io.shards import ShardPaths, commit_holds, latest_rows, read_journal, read_manifest
from pipeline.run.folder.leases import is_stale, read_lease
from pipeline.run.task import OK
from pipeline.run.execute.options import LEASE_TTL

if TYPE_CHECKING:  # plan.py reads shard states; a run-time import would close a circle
    from pipeline.run.folder.plan import RunPlan


# rows read from committed shards' manifests: only commit records older than their
# `errors`/`started_at` fields need it (tests assert status reads none on a new run)
MANIFEST_READS = Counter()


@dataclass
class ShardState:
    name: str
    planned: int
    committed: bool
    counts: dict[str, int] = field(default_factory=dict)   # status -> samples (record + journal)
    errors: dict[str, int] = field(default_factory=dict)   # "status: error" -> samples
    rows: dict[str, dict] = field(default_factory=dict)    # key -> latest row of a shard in progress
    times: list[tuple] = field(default_factory=list)        # (finished, started, samples) for the rate
    record: dict | None = None
    lease: dict | None = None

    @property
    def done(self) -> int:
        return sum(self.counts.values())


def _journals(root: Path) -> dict[str, list[Path]]:
    """shard name -> its attempts' journals, from one listing of work/."""
    out: dict[str, list[Path]] = {}
    try:
        names = os.listdir(root / "work")
    except FileNotFoundError:
        return out
    for n in sorted(names):
        if n.endswith(".journal"):
            out.setdefault(n.split(".", 1)[0], []).append(root / "work" / n)
    return out


def _from_record(st: ShardState, rec: dict, paths) -> None:
    if "errors" in rec:
        st.counts, st.errors = dict(rec["counts"]), dict(rec["errors"])
        if rec.get("finished_at"):
            st.times.append((rec["finished_at"], rec["started_at"], st.done))
        return
    MANIFEST_READS[paths.name] += 1  # an older record: its rows say what it does not
    _from_rows(st, {r["key"]: r for r in read_manifest(paths.manifest)})


def _from_rows(st: ShardState, rows: dict[str, dict]) -> None:
    st.rows = rows
    st.counts, st.errors, st.times = {}, {}, []
    for r in rows.values():
        st.counts[r["status"]] = st.counts.get(r["status"], 0) + 1
        if r["status"] != OK:
            e = f"{r['status']}: {r.get('error', '')}"
            st.errors[e] = st.errors.get(e, 0) + 1
        if r.get("finished_at"):
            st.times.append((r["finished_at"], r.get("started_at", r["finished_at"]), 1))


def collect(plan: RunPlan, lease_ttl: float = LEASE_TTL) -> list[ShardState]:
    """Every shard's state from its commit record, or the journal of the attempt in progress;
    no committed shard's rows and no sample file are read."""
    journals = _journals(plan.root)
    out = []
    for shard in plan.shards:
        paths = plan.shard_paths(shard)
        rec, problem = commit_holds(paths)
        st = ShardState(shard["name"], shard["count"], problem is None, record=rec if problem is None else None)
        if st.committed:
            _from_record(st, rec, paths)
        best: list[dict] = []
        for journal in journals.get(shard["name"], []):
            entries = read_journal(journal)
            if len(entries) > len(best):
                best = entries
        if best:  # a shard in progress (or being retried) is further along in its journal
            rows = dict(st.rows) if st.rows or not st.committed else \
                {r["key"]: r for r in read_manifest(paths.manifest)}
            rows.update(latest_rows(best))
            _from_rows(st, rows)
        info = read_lease(paths.lease)
        if info is not None and not st.committed:
            # the holder's own TTL (recorded in the lease) decides; a stale lease stays visible, flagged
            info["stale"] = is_stale(info, float(info.get("ttl") or lease_ttl))
            st.lease = info
        out.append(st)
    return out


def shard_rows(root: Path, st: ShardState) -> list[dict]:
    """Every durable row of one shard: its manifest once committed (`collect` keeps only the
    commit record of those), else the journal rows `collect` read."""
    if st.committed:
        return read_manifest(ShardPaths(root, st.name).manifest)
    return list(st.rows.values())


def done_count(plan: RunPlan) -> int:
    """Samples with a durable row (any status): where a progress bar starts."""
    return sum(s.done for s in collect(plan))


def committed_rows(plan: RunPlan) -> Iterator[tuple[dict, ShardPaths, dict, list[dict]]]:
    """(shard, its paths, its commit record, its manifest rows) of every shard whose commit record holds,
    in plan order:
    what readers of finished outputs (outputs.py, video's finish step) read."""
    for shard in plan.shards:
        paths = plan.shard_paths(shard)
        record, problem = commit_holds(paths)
        if record is not None and problem is None:
            yield shard, paths, record, read_manifest(paths.manifest)
