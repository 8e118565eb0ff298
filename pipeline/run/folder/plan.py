"""run.json and the per-shard sample files: a run's identity and plan, written once, checked on every start.

run.json holds the normalised config and its hash, the weights digest, package version,
seed, shard size, the data root (once: sample sources are relative to it), the number of
samples, the shard table and the plan's digests. The samples themselves live in
plan-{plan hash}/{shard}.parquet (the folder named by run.json's plan_dir), one file per shard, which a worker reads when it claims that shard
(pipeline/run/folder/plan_samples.py). Planning streams (pipeline/run/folder/stream_plan.py): memory
does not grow with the dataset. Inputs are described by size + mtime (their sha256 with
`--hash-inputs`); a worker hashes each input as it reads it and records the hash in the
manifest row. Devices and worker counts are not part of the identity, so a run started
on 4 GPUs can be resumed on 1.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pipeline.version import __version__
from pipeline.errors import BadInput, RunMismatch
from pipeline.io.atomic import atomic_write_text, fsync_dir, make_dir, temp_beside
from pipeline.io.shards import ShardPaths
from pipeline.run.folder.plan_samples import read_samples
from pipeline.run.folder.stream_plan import BLOCK, FileSink, PlanResult, changed_inputs, plan_rows
from pipeline.run.task import Sample, Task, sample_key, sample_seed

FORMAT = "nst-run-v2"
RUN_SUBDIRS = ("shards", "manifests", "commits", "work", "leases")
RUN_FILES = ("run.json", "shardindex.json", "summary.json", "launches.jsonl")
SHARD_KEYS = 200_000   # distinct (source, styles, extra) whose shard key is remembered while planning
_UNKNOWN = object()
IDENTITY_FIELDS = ("task", "package_version", "config_hash", "inputs_hash", "weights_digest", "seed",
                   "shard_size", "plan_hash", "total")


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class RunPlan:
    """The loaded run.json plus helpers to find shards and read their samples."""

    root: Path
    data: dict

    @property
    def total(self) -> int:
        return int(self.data["total"])

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

    def sample_file(self, shard: dict) -> Path:
        return self.root / self.data["plan_dir"] / f"{shard['name']}.parquet"

    def shard_samples(self, shard: dict) -> list[Sample]:
        """The samples of one shard, in plan order (reads that shard's file only)."""
        root = self.data.get("data_root")
        style_root = self.data.get("style_root")
        out = []
        for r in read_samples(self.sample_file(shard)):
            source = r["source"]
            if source is not None and r.get("offset") is not None:
                tar, _, _member = source.partition("#")
                from pipeline.io.locations import member_ref

                path = member_ref(os.path.join(root, tar), r["offset"], r["length"])
            else:
                path = os.path.join(root, source) if (source is not None and root) else source
            out.append(Sample(r["index"], r["key"] or sample_key(r["index"], self.total), path,
                              tuple(r["styles"] or ()), r["seed"], json.loads(r["extra"] or "{}"),
                              source if root else None,
                              {"size": r["size"], "mtime_ns": r["mtime_ns"], "sha256": r["sha256"]},
                              _relative(r["styles"], style_root)))
        return out

    def iter_samples(self) -> Iterator[Sample]:
        """Every sample, shard by shard (one shard's rows in memory at a time)."""
        for shard in self.shards:
            yield from self.shard_samples(shard)


def _style_root(task: Task) -> str | None:
    """The folder the run's style files are published relative to (recorded once in run.json):
    the deepest folder holding them all."""
    styles = sorted({s for s in task.style_files()})
    return os.path.commonpath([os.path.dirname(os.path.abspath(s)) for s in styles]) if styles else None


def _relative(styles, root: str | None) -> tuple[str, ...] | None:
    """Styles as published in manifests and sample records: relative to the run's style root."""
    if not root or not styles:
        return None
    return tuple(os.path.relpath(os.path.abspath(s), root) for s in styles)


def _rows(task: Task, seed: int) -> Iterator[dict]:
    """The task's plan as rows for the planner: numbered, seeded, relative, with the file to describe."""
    from pipeline.io.locations import parse_member_ref

    last, last_text = None, ""
    for i, p in enumerate(task.plan()):
        ref = parse_member_ref(p.source) if p.source and "#" in p.source else None
        if p.extra != last:  # consecutive samples mostly share their parameters: encode once
            last, last_text = p.extra, json.dumps(p.extra, sort_keys=True, separators=(",", ":"))
        row = {"index": i, "key": p.key, "source": p.rel if p.rel is not None else p.source,
               "styles": list(p.styles), "seed": sample_seed(seed, i), "extra": last_text,
               "offset": ref[1] if ref else None, "length": ref[2] if ref else None,
               "_path": ref[0] if ref else p.source, "_source": p.source}
        yield row


class _KeyCheck:
    """Explicit keys (from paths or tar __key__) must be unique: a collision is refused at planning."""

    def __init__(self):
        self.seen: dict[int, int] = {}

    def __call__(self, rows):
        for row in rows:
            key = row["key"]
            if key is not None:
                h = hash(key)
                if h in self.seen:
                    raise BadInput(f"two inputs map to the key {key!r} (samples {self.seen[h]} and "
                                   f"{row['index']}); use --key-from index")
                self.seen[h] = row["index"]
            yield row


def _group_of(task: Task):
    """The task's shard_key on a planner row (None when the task does not group).

    A shard key depends on the source file, its styles and `extra` only (Task.shard_key), so it
    is asked once per distinct (source, size, mtime, styles, extra): a list that names a file a
    thousand times costs one call and then dictionary look-ups (issue 28). The sample carries
    the size and mtime the planner described (`planned`), so a header is also read once per
    distinct file when the same file comes with other styles (pipeline/io/headers.py).
    """
    if type(task).shard_key is Task.shard_key:
        return None
    known: dict = {}

    def key(row: dict):
        memo = (row["_source"], row["size"], row["mtime_ns"], tuple(row["styles"]), row["extra"])
        hit = known.get(memo, _UNKNOWN)
        if hit is not _UNKNOWN:
            return hit
        sample = Sample(row["index"], row["key"] or "", row["_source"], memo[3], row["seed"],
                        json.loads(row["extra"]), planned={"size": row["size"], "mtime_ns": row["mtime_ns"]})
        value = task.shard_key(sample)
        if len(known) >= SHARD_KEYS:
            known.clear()
        known[memo] = value
        return value
    return key


def plan_into(task: Task, shard_size: int, plan_dir: Path, hash_inputs: bool) -> tuple[dict, PlanResult]:
    """Stream the task's plan into plan_dir; the run.json content and the plan's figures."""
    config = task.identity()
    seed = task.seed()
    sink = FileSink(plan_dir)
    result = plan_rows(_KeyCheck()(_rows(task, seed)), shard_size, task.shard_prefix, sink,
                       group_of=_group_of(task), hash_inputs=hash_inputs,
                       whole_groups=bool(getattr(task, "whole_groups", False)))
    sink.sync()
    if result.total == 0:
        raise BadInput("the plan is empty: no samples to produce")
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
        "data_root": task.data_root(),
        "style_root": _style_root(task),
        "hash_inputs": hash_inputs,
        "total": result.total,
        "inputs_hash": result.inputs_hash,
        "input_blocks": result.input_blocks,
        "shard_size": shard_size,
        "plan_hash": result.plan_hash,
        "shards": result.shards,
        # named by the plan's digest: two processes planning the same run at once make the same
        # folder, and a leftover of an interrupted different plan is never mistaken for this one
        "plan_dir": f"plan-{result.plan_hash[:8]}{result.inputs_hash[:8]}",
    }
    data["identity_hash"] = _hash({k: data[k] for k in IDENTITY_FIELDS})
    return data, result


def load_run(root: Path) -> RunPlan:
    path = Path(root) / "run.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"no run in {str(root)!r} (run.json not found)") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{str(path)!r} is not valid JSON: {exc.msg}") from None
    if data.get("format") != FORMAT:
        raise RunMismatch(
            f"{str(path)!r} is a {data.get('format', 'older')} plan (every sample inside run.json) made by "
            f"nst-pipeline {data.get('package_version', '?')}; this version plans per shard: finish it with "
            f"that version, or re-plan it here with --overwrite (which discards its outputs)")
    return RunPlan(Path(root), data)


def _check(task: Task, old: dict) -> tuple[dict, list[str], list[str]]:
    """Re-describe the task's plan (no header reads, nothing written) against the recorded one:
    (fresh figures, differences, changed input sources)."""
    config = task.identity()
    seed = task.seed()
    res = plan_rows(_rows(task, seed), old["shard_size"], task.shard_prefix, None,
                    hash_inputs=bool(old.get("hash_inputs")))
    new = {"task": task.name, "package_version": __version__, "config": config, "config_hash": _hash(config),
           "seed": seed, "weights_digest": task.weights_digest(), "shard_size": old["shard_size"],
           "total": res.total, "plan_hash": res.plan_hash, "inputs_hash": res.inputs_hash,
           "input_blocks": res.input_blocks}
    changed: list[str] = []
    if new["inputs_hash"] != old["inputs_hash"] and new["plan_hash"] == old["plan_hash"]:
        def fresh(blocks: set[int]) -> dict[int, dict]:
            rows = (r for r in _rows(task, seed) if r["index"] // BLOCK in blocks)
            out: dict[int, dict] = {}
            plan_rows(rows, 1 << 30, "x", lambda sh, rs: out.update({r["index"]: r for r in rs}),
                      hash_inputs=bool(old.get("hash_inputs")))
            return out
        changed = changed_inputs(Path(old["_root"]) / old["plan_dir"], old["shards"], old["input_blocks"],
                                 res.input_blocks, fresh)
    return new, _differences(old, new, changed), changed


def _differences(old: dict, new: dict, changed: list[str]) -> list[str]:
    out = []
    for k in IDENTITY_FIELDS:
        if old.get(k) == new.get(k):
            continue
        if k == "config_hash":
            a, b = old.get("config", {}), new.get("config", {})
            diff = [f"{n}: {a.get(n)!r} -> {b.get(n)!r}" for n in sorted(set(a) | set(b)) if a.get(n) != b.get(n)]
            out.append("config (" + "; ".join(diff[:4]) + ")")
        elif k == "inputs_hash":
            if old.get("plan_hash") == new.get("plan_hash"):
                out.append(f"inputs ({len(changed)} files differ, e.g. {changed[0]!r})" if changed
                           else "inputs (changed)")
        elif k in ("plan_hash", "total"):
            if "sample plan (order, styles or assignment)" not in out:
                out.append("sample plan (order, styles or assignment)")
        else:
            out.append(f"{k}: {old.get(k)!r} -> {new.get(k)!r}")
    return out


def discard_run(root: Path) -> None:
    """--overwrite: remove what a run wrote into root (only the run's own files)."""
    for d in [*RUN_SUBDIRS, "visualize", *(p.name for p in root.glob("plan-*"))]:
        shutil.rmtree(root / d, ignore_errors=True)
    for f in RUN_FILES:
        try:
            (root / f).unlink()
        except FileNotFoundError:
            pass


def _accept_fixed_inputs(root: Path, previous: dict, task: Task, changed: list[str]) -> dict | None:
    """--retry-failed: inputs used only by failed samples may have been fixed; adopt their new
    descriptions (rewriting only the shard files that hold them)."""
    from pipeline.io.shards import read_manifest

    plan = RunPlan(root, previous)
    changed_set = set(changed)
    touched = []
    for shard in plan.shards:
        samples = plan.shard_samples(shard)
        if not any(s.published_source in changed_set for s in samples):
            continue
        paths = plan.shard_paths(shard)
        rows = {r["key"]: r for r in read_manifest(paths.manifest)} if paths.manifest.exists() else {}
        for s in samples:
            if s.published_source in changed_set and rows.get(s.key, {}).get("status", "ok") == "ok":
                return None  # an input of a finished sample changed: a different run
        touched.append(shard)
    # keep the recorded grouping: rewrite only the touched shards' rows with the new descriptions
    from pipeline.run.folder.plan_samples import write_samples

    fresh: dict[int, dict] = {}
    changed_rows = (r for r in _rows(task, previous["seed"]) if r["source"] in changed_set)
    plan_rows(changed_rows, 1 << 30, "x", lambda sh, rs: fresh.update({r["index"]: r for r in rs}),
              hash_inputs=bool(previous.get("hash_inputs")))
    for shard in touched:
        rows = [fresh.get(r["index"], r) for r in read_samples(plan.sample_file(shard))]
        write_samples(plan.sample_file(shard), rows)
    check, diffs, _ = _check(task, {**previous, "_root": str(root)})
    if diffs and not all(d.startswith("inputs (") for d in diffs):
        return None
    updated = dict(previous)
    updated["inputs_hash"] = check["inputs_hash"]
    updated["input_blocks"] = check["input_blocks"]
    updated["input_changes"] = previous.get("input_changes", []) + [{"at": int(time.time()), "paths": changed}]
    updated["identity_hash"] = _hash({k: updated[k] for k in IDENTITY_FIELDS})
    atomic_write_text(root / "run.json", json.dumps(updated, indent=1, sort_keys=True))
    return updated


def _only_missing(root: Path, previous: dict, new: dict) -> bool:
    """True when the plan differs from the recorded one only by inputs that have gone missing since
    planning (deleted or moved, so also gone from a directory's listing): the same run, in which
    those samples become failed_missing rows. Streams the recorded shard files."""
    plan = RunPlan(root, previous)
    base = previous.get("data_root")
    missing = 0
    for shard in previous["shards"]:
        for r in read_samples(plan.sample_file(shard)):
            src = r["source"]
            if src is not None and r.get("offset") is None and \
                    not os.path.exists(os.path.join(base, src) if base else src):
                missing += 1
    if not missing:
        return False
    if new["plan_hash"] == previous["plan_hash"]:
        return True  # a list file still names them
    return new["total"] == previous["total"] - missing  # a directory listing lost exactly those


def plan_run(root: Path, task: Task, shard_size: int, overwrite: bool = False, retry_failed: bool = False,
             hash_inputs: bool = False, check: bool = True) -> RunPlan:
    """Create run.json (exclusively) and the sample files, or check that the existing run is this one.

    `check=False` skips re-describing the inputs of an existing run (a secondary rank: rank 0
    has just checked). With `retry_failed`, input files that only failed samples use may
    differ from the recorded ones (the user fixed them); run.json records the change.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise BadInput(f"--out {str(root)!r} exists and is not a directory")
    path = root / "run.json"
    if overwrite:
        discard_run(root)
    if path.exists():
        previous = load_run(root).data
        if previous["shard_size"] != shard_size:
            raise RunMismatch(f"{str(root)!r} holds a different run: shard_size: {previous['shard_size']!r} -> "
                              f"{shard_size!r}; use another --out, or --overwrite to discard the old run")
        if not check:
            return RunPlan(root, previous)
        fresh, diffs, changed = _check(task, {**previous, "_root": str(root)})
        if diffs and retry_failed and all(d.startswith("inputs (") for d in diffs) and changed:
            updated = _accept_fixed_inputs(root, previous, task, changed)
            if updated is not None:
                return RunPlan(root, updated)
        if diffs and all(d.startswith(("inputs (", "sample plan")) for d in diffs) \
                and _only_missing(root, previous, fresh):
            return RunPlan(root, previous)  # their samples become failed_missing rows; the run goes on
        if diffs:
            hint = (" (or --retry-failed if you fixed inputs of failed samples)"
                    if all(d.startswith("inputs (") for d in diffs) and not retry_failed else "")
            raise RunMismatch(f"{str(root)!r} holds a different run: " + ", ".join(diffs)
                              + f"; use another --out, or --overwrite to discard the old run{hint}")
        return RunPlan(root, previous)
    if shard_size <= 0:
        raise BadInput(f"--shard-size must be a positive integer, got {shard_size}")
    created = not root.exists()
    make_dir(root, "run folder")
    scratch = root / f".plan.{os.getpid()}.{time.time_ns()}"
    os.mkdir(scratch)  # 0777 & ~umask, unlike mkdtemp's 0700: teammates read the plan too
    try:
        data, _ = plan_into(task, shard_size, scratch, hash_inputs)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)  # nothing half-written
        if created:
            shutil.rmtree(root, ignore_errors=True)
        raise
    for d in RUN_SUBDIRS:
        (root / d).mkdir(exist_ok=True)
    try:
        os.rename(scratch, root / data["plan_dir"])
    except OSError as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise  # only "another process planned the same run first" (its files are the same) is fine
    if created:
        fsync_dir(root.parent)  # the run folder's own name
    fsync_dir(root)  # the plan folder's name and the run's subfolders, before run.json names them
    fd, tmp = temp_beside(path)
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
        return plan_run(root, task, shard_size, check=False)
    os.unlink(tmp)
    for name, text in (task.run_files() if hasattr(task, "run_files") else {}).items():
        atomic_write_text(root / name, text)  # e.g. classes.json: what the plan's labels mean
    fsync_dir(root)
    return RunPlan(root, data)
