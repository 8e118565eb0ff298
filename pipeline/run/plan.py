"""run.json: a run's identity and plan, written once, compared on every start.

It holds the normalised config and its hash, the input files (path, size,
sha256) and their hash, the weights digest, package version, seed, shard size,
the numbered samples and the shard plan. Devices and worker counts are not part
of it, so a run started on 4 GPUs can be resumed on 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import __version__
from pipeline.errors import BadInput, RunMismatch
from pipeline.io.atomic import atomic_write_text, fsync_dir
from pipeline.io.shards import ShardPaths
from pipeline.run.task import Sample, Task, number
from pipeline.io.hashing import sha256_file

FORMAT = "nst-run-v1"
RUN_SUBDIRS = ("shards", "manifests", "commits", "work", "leases")
RUN_FILES = ("run.json", "shardindex.json", "summary.json")
IDENTITY_FIELDS = ("task", "package_version", "config_hash", "inputs_hash", "weights_digest", "seed",
                   "shard_size", "plan_hash")


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _describe_one(p: str, old: dict | None) -> dict:
    try:
        st = os.stat(p)
    except OSError:
        return {"path": p, "size": None, "sha256": None, "mtime_ns": None}
    if old and old.get("size") == st.st_size and old.get("mtime_ns") == st.st_mtime_ns and old.get("sha256"):
        digest = old["sha256"]
    else:
        try:
            digest = sha256_file(Path(p))
        except OSError:
            digest = None
    return {"path": p, "size": st.st_size, "sha256": digest, "mtime_ns": st.st_mtime_ns}


def describe_inputs(paths: list[str], previous: dict[str, dict] | None = None) -> list[dict]:
    """(path, size, sha256) per distinct input, in first-use order.

    A hash recorded earlier is reused when size and mtime still match (so a resume
    does not re-read the dataset); mtime is a cache hint, not part of the identity.
    Files are hashed by a few threads: the work is I/O, often on a network filesystem.
    """
    from concurrent.futures import ThreadPoolExecutor

    unique = list(dict.fromkeys(paths))
    previous = previous or {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda p: _describe_one(p, previous.get(p)), unique, chunksize=64))


@dataclass
class RunPlan:
    """The loaded run.json plus helpers to find samples and shards."""

    root: Path
    data: dict

    @property
    def samples(self) -> list[Sample]:
        return [Sample(s["index"], s["key"], s["source"], tuple(s["styles"]), s["seed"], s.get("extra", {}))
                for s in self.data["samples"]]

    @property
    def shards(self) -> list[dict]:
        return self.data["shards"]

    @property
    def prefix(self) -> str:
        return self.data["shard_prefix"]

    @property
    def mtime(self) -> int:
        return int(self.data["created_at"])

    def shard_paths(self, shard: dict) -> ShardPaths:
        return ShardPaths(self.root, shard["name"])

    def shard_samples(self, shard: dict) -> list[Sample]:
        if "indices" in shard:  # grouped by the task's shard_key: not one index range
            rows = [self.data["samples"][i] for i in shard["indices"]]
        else:
            rows = self.data["samples"][shard["first"]: shard["first"] + shard["count"]]
        return [Sample(s["index"], s["key"], s["source"], tuple(s["styles"]), s["seed"], s.get("extra", {}))
                for s in rows]


def grouped_order(samples: list[Sample], key_of) -> list[int]:
    """Sample indices with equal keys made adjacent: groups in order of first appearance,
    input order within a group. Keys are read by a few threads (image headers, often on
    a network filesystem)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(key_of, samples, chunksize=64))
    groups: dict = {}
    for s, k in zip(samples, keys):
        groups.setdefault(k, []).append(s.index)
    return [i for members in groups.values() for i in members]


def plan_shards(task: Task, samples: list[Sample], shard_size: int) -> list[dict]:
    """Cut the plan into shards of shard_size samples, grouped by the task's shard_key.

    A shard that is one run of consecutive indices is stored as first/count; one that
    grouping filled from several places lists its "indices" (grouped order). Every sample is
    in exactly one shard either way.
    """
    order = list(range(len(samples)))
    if type(task).shard_key is not Task.shard_key:
        order = grouped_order(samples, task.shard_key)
    shards = []
    for sid, start in enumerate(range(0, len(order), shard_size)):
        chunk = order[start:start + shard_size]
        shard = {"id": sid, "name": f"{task.shard_prefix}-{sid:06d}", "count": len(chunk)}
        if chunk == list(range(chunk[0], chunk[0] + len(chunk))):
            shard["first"] = chunk[0]
        else:
            shard["indices"] = chunk
        shards.append(shard)
    return shards


def build_run_data(task: Task, shard_size: int, previous: dict | None = None) -> dict:
    if shard_size <= 0:
        raise BadInput(f"--shard-size must be a positive integer, got {shard_size}")
    config = task.identity()
    seed = task.seed()
    samples = number(task.plan(), seed)
    if not samples:
        raise BadInput("the plan is empty: no samples to produce")
    files = []
    for s in samples:
        if s.source:
            files.append(s.source)
        files.extend(s.styles)
    prev_inputs = {i["path"]: i for i in (previous or {}).get("inputs", [])}
    inputs = describe_inputs(files, prev_inputs)
    sample_rows = [{"index": s.index, "key": s.key, "source": s.source, "styles": list(s.styles),
                    "seed": s.seed, "extra": s.extra} for s in samples]
    # an existing run keeps its recorded shards (open_run resumes with them): no keys to read again
    shards = previous["shards"] if previous and "shards" in previous else plan_shards(task, samples, shard_size)
    data = {
        "format": FORMAT,
        "task": task.name,
        "shard_prefix": task.shard_prefix,
        "package_version": __version__,
        "created_at": int(time.time()),
        "config": config,
        "config_hash": _hash(config),
        "seed": seed,
        "weights_digest": task.weights_digest(),
        "inputs": inputs,
        "inputs_hash": _hash([[i["path"], i["size"], i["sha256"]] for i in inputs]),
        "shard_size": shard_size,
        "plan_hash": _hash(sample_rows),
        "samples": sample_rows,
        "shards": shards,
    }
    data["identity_hash"] = _hash({k: data[k] for k in IDENTITY_FIELDS})
    return data


def load_run(root: Path) -> RunPlan:
    path = Path(root) / "run.json"
    try:
        return RunPlan(Path(root), json.loads(path.read_text()))
    except FileNotFoundError:
        raise BadInput(f"no run in {str(root)!r} (run.json not found)")
    except json.JSONDecodeError as exc:
        raise BadInput(f"{str(path)!r} is not valid JSON: {exc.msg}")


def _differences(old: dict, new: dict) -> list[str]:
    out = []
    for k in IDENTITY_FIELDS:
        if old.get(k) == new.get(k):
            continue
        if k == "config_hash":
            a, b = old.get("config", {}), new.get("config", {})
            changed = [f"{n}: {a.get(n)!r} -> {b.get(n)!r}" for n in sorted(set(a) | set(b)) if a.get(n) != b.get(n)]
            out.append("config (" + "; ".join(changed[:4]) + ")")
        elif k == "inputs_hash":
            a = {i["path"]: i for i in old.get("inputs", [])}
            b = {i["path"]: i for i in new.get("inputs", [])}
            changed = sorted(p for p in set(a) | set(b) if (a.get(p) or {}).get("sha256") != (b.get(p) or {}).get("sha256"))
            out.append(f"inputs ({len(changed)} files differ, e.g. {changed[0]!r})" if changed else "inputs (order)")
        elif k == "plan_hash":
            out.append("sample plan (order, styles or assignment)")
        else:
            out.append(f"{k}: {old.get(k)!r} -> {new.get(k)!r}")
    return out


def discard_run(root: Path) -> None:
    """--overwrite: remove what a run wrote into root (only the run's own files)."""
    for d in RUN_SUBDIRS:
        shutil.rmtree(root / d, ignore_errors=True)
    for f in RUN_FILES:
        try:
            (root / f).unlink()
        except FileNotFoundError:
            pass


def _accept_fixed_inputs(root: Path, previous: dict, data: dict) -> dict | None:
    """--retry-failed: inputs used only by failed samples may have been fixed; adopt their new hashes."""
    from pipeline.run.shard_state import collect

    old = {i["path"]: i for i in previous["inputs"]}
    new = {i["path"]: i for i in data["inputs"]}
    if set(old) != set(new):
        return None
    changed = {p for p in new if (old[p]["size"], old[p]["sha256"]) != (new[p]["size"], new[p]["sha256"])}
    used_ok, used_failed = set(), set()
    for shard in collect(RunPlan(root, previous)):
        for row in shard.rows.values():
            (used_ok if row["status"] == "ok" else used_failed).update([row["source"], *row["styles"]])
    if not changed or changed & used_ok or not changed <= used_failed:
        return None
    updated = dict(previous)
    updated["inputs"] = data["inputs"]
    updated["inputs_hash"] = data["inputs_hash"]
    updated["input_changes"] = previous.get("input_changes", []) + [
        {"at": int(time.time()), "paths": sorted(changed)}]
    updated["identity_hash"] = _hash({k: updated[k] for k in IDENTITY_FIELDS})
    atomic_write_text(root / "run.json", json.dumps(updated, indent=1, sort_keys=True))
    return updated


def _only_missing(previous: dict, data: dict) -> bool:
    """True when the plan differs from the recorded one only by inputs that have gone missing
    since (deleted or moved after planning, so also gone from a directory's listing): the same
    run, in which those samples become failed_missing rows."""
    old = {i["path"]: i for i in previous.get("inputs", [])}
    new = {i["path"]: i for i in data["inputs"]}
    gone = {p for p in old if p not in new or new[p]["size"] is None}
    if not gone or set(new) - set(old):
        return False
    if any((old[p]["size"], old[p]["sha256"]) != (new[p]["size"], new[p]["sha256"]) for p in set(new) - gone):
        return False

    def present(samples: list[dict]) -> list[tuple]:
        return [(r["source"], r["styles"], r["extra"]) for r in samples
                if not gone & {r["source"], *r["styles"]}]

    return present(previous["samples"]) == present(data["samples"])


def open_run(root: Path, task: Task, shard_size: int, overwrite: bool = False,
             retry_failed: bool = False) -> RunPlan:
    """Create run.json (exclusively), or check that the existing one is the same run.

    With `retry_failed`, input files that only failed samples use may differ
    from the recorded ones (the user fixed them); run.json records the change.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise BadInput(f"--out {str(root)!r} exists and is not a directory")
    path = root / "run.json"
    previous = None
    if path.exists() and not overwrite:
        previous = load_run(root).data
    elif overwrite:
        discard_run(root)
    data = build_run_data(task, shard_size, previous)
    if previous is not None:
        diffs = _differences(previous, data)
        if diffs == [d for d in diffs if d.startswith("inputs (")] and diffs and retry_failed:
            updated = _accept_fixed_inputs(root, previous, data)
            if updated is not None:
                return RunPlan(root, updated)
        if set(diffs) <= {d for d in diffs if d.startswith(("inputs (", "sample plan"))} \
                and _only_missing(previous, data):
            return RunPlan(root, previous)  # their samples become failed_missing rows; the run goes on
        if diffs:
            hint = (" (or --retry-failed if you fixed inputs of failed samples)"
                    if all(d.startswith("inputs (") for d in diffs) and not retry_failed else "")
            raise RunMismatch(f"{str(root)!r} holds a different run: " + ", ".join(diffs)
                              + f"; use another --out, or --overwrite to discard the old run{hint}")
        return RunPlan(root, previous)
    root.mkdir(parents=True, exist_ok=True)
    for d in RUN_SUBDIRS:
        (root / d).mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".run.json.", suffix=".tmp", dir=root)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:  # a full disk: leave no half-written plan behind
        os.unlink(tmp)
        raise
    try:
        os.link(tmp, path)  # exclusive: two workers starting at once agree on one run.json
    except FileExistsError:
        os.unlink(tmp)
        return open_run(root, task, shard_size)
    os.unlink(tmp)
    fsync_dir(root)
    return RunPlan(root, data)
