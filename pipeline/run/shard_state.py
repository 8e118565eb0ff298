"""Each shard's state, read only from the run's files: commit record, manifest, journal, lease.

run/status.py sums it up; plan.py reads it for --retry-failed. Reading never changes anything,
so it is safe while workers run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.io.shards import commit_holds, latest_rows, read_journal, read_manifest
from pipeline.run.leases import is_stale, read_lease

if TYPE_CHECKING:  # plan.py reads shard states; a run-time import would close a circle
    from pipeline.run.plan import RunPlan


@dataclass
class ShardState:
    name: str
    planned: int
    committed: bool
    rows: dict[str, dict] = field(default_factory=dict)  # key -> latest row (manifest or journal)
    record: dict | None = None
    lease: dict | None = None


def collect(plan: RunPlan, lease_ttl: float = 600.0) -> list[ShardState]:
    out = []
    for shard in plan.shards:
        paths = plan.shard_paths(shard)
        rec, problem = commit_holds(paths)
        st = ShardState(shard["name"], shard["count"], problem is None, record=rec if problem is None else None)
        if st.committed:
            st.rows = {r["key"]: r for r in read_manifest(paths.manifest)}
        best: list[dict] = []
        for _, journal in paths.work_files():
            entries = read_journal(journal)
            if len(entries) > len(best):
                best = entries
        if best:  # a shard in progress (or being retried) is further along in its journal
            st.rows.update(latest_rows(best))
        info = read_lease(paths.lease)
        if info is not None and not st.committed:
            # the holder's own TTL (recorded in the lease) decides; a stale lease stays visible, flagged
            info["stale"] = is_stale(info, float(info.get("ttl") or lease_ttl))
            st.lease = info
        out.append(st)
    return out
