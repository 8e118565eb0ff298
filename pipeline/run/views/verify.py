"""`nst verify`: is a run directory complete and self-consistent?

Checks every shard against its commit record (sha256, size, member count), that
tar members are valid keys holding the bytes the manifest recorded, that each
tar holds only its own shard's planned keys (so keys are unique across shards:
the plan gives every key to one shard) and that each planned sample has exactly
one manifest row. It streams: one shard's sample file, manifest and tar at a time.
Returns a list of problems, each naming the file and what is off.
"""

from __future__ import annotations

import hashlib
import json
import tarfile

from pipeline.io.shards import KEY_RE, commit_holds, file_digests, read_manifest
from pipeline.run.folder.plan import RunPlan
from pipeline.run.task import OK, STATUSES


def verify_run(plan: RunPlan) -> list[str]:
    problems: list[str] = []
    index_rows = {}
    for shard in plan.shards:
        paths = plan.shard_paths(shard)
        rec, problem = commit_holds(paths, full=True)
        if problem is not None:
            problems.append(f"{shard['name']}: {problem}")
            if rec is None or not paths.tar.exists() or not paths.manifest.exists():
                continue
        planned = {s.key: s for s in plan.shard_samples(shard)}
        try:
            rows = read_manifest(paths.manifest)
        except (OSError, json.JSONDecodeError) as exc:
            problems.append(f"{paths.manifest.name}: unreadable ({exc})")
            continue
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
            if r["key"] not in planned:
                problems.append(f"{paths.manifest.name}: row for unplanned key {r['key']!r}")
            elif r.get("index") != planned[r["key"]].index:
                problems.append(f"{paths.manifest.name}: key {r['key']!r} has index {r.get('index')}, "
                                f"plan says {planned[r['key']].index}")
            if r["status"] not in STATUSES:
                problems.append(f"{paths.manifest.name}: key {r['key']!r} has unknown status {r['status']!r}")
        keys = [r["key"] for r in rows]
        for k in sorted({k for k in keys if keys.count(k) > 1}):
            problems.append(f"{paths.manifest.name}: {keys.count(k)} rows for key {k!r}")
        for k in sorted(set(planned) - set(keys)):
            problems.append(f"{paths.manifest.name}: no row for planned key {k!r}")
        if rec is not None and rec.get("counts") != counts:
            problems.append(f"{paths.commit.name}: counts {rec.get('counts')} != manifest {counts}")
        problems.extend(_check_members(paths.tar, {r["key"]: r for r in rows if r["key"] in planned}))
        index_rows[shard["name"]] = rec
    planned_tars = {f"{shard['name']}.tar" for shard in plan.shards}
    for tar in sorted((plan.root / "shards").glob("*.tar")):
        if tar.name not in planned_tars:
            problems.append(f"shards/{tar.name} is not part of this run's plan")
    problems.extend(_check_shardindex(plan, index_rows))
    return problems


def _check_members(tar_path, rows: dict[str, dict]) -> list[str]:
    """Members are {key}.{ext} of this shard's planned keys, bytes match the manifest's sha256."""
    problems = []
    found: dict[str, dict[str, str]] = {}
    try:
        with tarfile.open(tar_path, "r:") as tf:
            for m in tf:
                key, _, ext = m.name.partition(".")
                if not KEY_RE.match(key) or not ext or len(m.name.encode()) > 100:
                    problems.append(f"{tar_path.name}: invalid member name {m.name!r}")
                    continue
                if ext in found.setdefault(key, {}):
                    problems.append(f"{tar_path.name}: member {m.name!r} appears twice")
                data = tf.extractfile(m).read() if m.isfile() else b""
                found[key][ext] = hashlib.sha256(data).hexdigest()
    except (tarfile.TarError, OSError) as exc:
        return [f"{tar_path.name}: not a readable tar ({exc})"]
    for key, members in found.items():
        row = rows.get(key)
        if row is None or row["status"] != OK:
            problems.append(f"{tar_path.name}: members for key {key!r} without an ok manifest row")
            continue
        want = {ext: o["sha256"] for ext, o in row.get("outputs", {}).items()}
        if want != members:
            problems.append(f"{tar_path.name}: members of {key!r} do not match the manifest's sha256")
    for key, row in rows.items():
        if row["status"] == OK and key not in found:
            problems.append(f"{tar_path.name}: ok sample {key!r} has no members in the tar")
    return problems


def _check_shardindex(plan: RunPlan, records: dict) -> list[str]:
    path = plan.root / "shardindex.json"
    if not path.exists():
        return ["shardindex.json is missing (the run has not completed)"]
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return [f"shardindex.json: invalid JSON ({exc.msg})"]
    problems = []
    if index.get("__kind__") != "wids-shard-index-v1" or index.get("wids_version") != 1:
        problems.append("shardindex.json: not a wids-shard-index-v1 index")
    listed = {e.get("url"): e for e in index.get("shardlist", [])}
    for name, rec in records.items():
        if rec is None or not rec["tar"]["samples"]:
            continue
        e = listed.pop(rec["tar"]["path"], None)
        if e is None:
            problems.append(f"shardindex.json: {rec['tar']['path']} is not listed")
            continue
        tar = plan.root / rec["tar"]["path"]
        _, md5, size = file_digests(tar) if tar.exists() else (None, None, None)
        if e.get("nsamples") != rec["tar"]["samples"] or e.get("filesize") != size or e.get("md5sum") != md5:
            problems.append(f"shardindex.json: entry for {rec['tar']['path']} does not match the shard")
    for url in listed:
        problems.append(f"shardindex.json: lists unknown shard {url}")
    return problems
