"""Planning that streams: numbered rows in, per-shard sample files out, memory bounded by a few shards.

Rows arrive in plan order (index, source, styles, seed, ...), are described in chunks by a
thread pool (size + mtime of the source, or its sha256 with --hash-inputs; the task's
shard key, e.g. an image header, when shards are grouped) and are routed into per-key
buffers; a buffer that reaches the shard size becomes a shard at once. Only the buffers,
one chunk and a bounded stat cache are ever in memory, whatever the dataset's size.

The same pass checks an existing run on resume: a `sink` that compares each new shard with
the recorded one instead of writing it (see `CheckSink`).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from pipeline.io.atomic import fsync_dir
from pipeline.io.hashing import sha256_file
from pipeline.run.folder.plan_samples import read_samples, write_samples

CHUNK = 2048                 # rows described per thread-pool round
_MIXED = object()             # the buffer key of rows left over from partial groups
BLOCK = 4096                 # indices per recorded input digest (finds what changed on resume)
STAT_CACHE = 200_000         # distinct paths remembered (a list that repeats files stats each once)
INPUT_FIELDS = ("source", "size", "mtime_ns", "sha256", "offset", "length")


def plan_line(r: dict) -> bytes:
    """What the plan digest covers of a row (fields joined by unit separators, not JSON: cheap)."""
    styles = "\x1e".join(r["styles"])
    return (f"{r['index']}\x1f{r['key']}\x1f{r['source']}\x1f{styles}\x1f{r['seed']}\x1f{r.get('offset')}"
            f"\x1f{r.get('length')}\x1f{r['extra']}\n").encode("utf-8", "surrogateescape")


def input_line(r: dict) -> bytes:
    """What the inputs digest covers of a row: where the input is and how it was described."""
    return (f"{r['source']}\x1f{r['size']}\x1f{r['mtime_ns']}\x1f{r['sha256']}\x1f{r.get('offset')}"
            f"\x1f{r.get('length')}\n").encode("utf-8", "surrogateescape")


@dataclass
class PlanResult:
    """What run.json records about the plan; the rows themselves are in the shard files.

    The digests run over the rows in index order, so they do not depend on how rows were
    grouped into shards: a resume re-checks them without reading any image header.
    """

    shards: list[dict] = field(default_factory=list)
    total: int = 0
    plan_hash: str = ""      # every row's plan fields (index, key, source, styles, seed, extra ...)
    inputs_hash: str = ""    # every row's input description (size + mtime, or sha256)
    input_blocks: list[str] = field(default_factory=list)  # inputs digest per BLOCK indices


class InputDescriber:
    """size + mtime (and sha256 when asked) of input files, cached for files listed many times."""

    def __init__(self, hash_inputs: bool = False):
        self.hash_inputs = hash_inputs
        self._cache: dict[str, tuple] = {}

    def __call__(self, path: str | None) -> tuple:
        if path is None:
            return (None, None, None)
        hit = self._cache.get(path)
        if hit is not None:
            return hit
        try:
            st = os.stat(path)
            digest = sha256_file(path) if self.hash_inputs else None
            desc = (st.st_size, st.st_mtime_ns, digest)
        except OSError:
            desc = (None, None, None)   # missing now: the worker records failed_io for it
        if len(self._cache) >= STAT_CACHE:
            self._cache.clear()
        self._cache[path] = desc
        return desc


def _chunks(rows: Iterable[dict], n: int) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for r in rows:
        chunk.append(r)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def plan_rows(rows: Iterable[dict], shard_size: int, prefix: str,
              sink: Callable[[dict, list[dict]], None] | None,
              group_of: Callable[[dict], object] | None = None, hash_inputs: bool = False,
              threads: int = 8, max_buffered_shards: int = 16, whole_groups: bool = False) -> PlanResult:
    """Describe, group and cut `rows` into shards handed to `sink(shard, rows)` in shard order
    (sink None: only the digests, as a resume's check needs).

    Each row carries `_path` (the file to describe: the source file, or the tar holding it).
    `group_of(row)` (optional; called in the thread pool) makes rows with equal values share
    shards: a group's rows become a shard as soon as they fill one. What is left in partial
    groups at the end is concatenated (groups in order) and cut into full shards, and so is
    everything waiting when more than `max_buffered_shards` shards' worth of rows are in
    partial groups: memory stays bounded however many distinct groups a dataset has, and
    every shard but the last is full.

    whole_groups: each run of consecutive rows with equal `group_of` becomes exactly one shard,
    whatever its length (never cut, never mixed): for samples that depend on each other (the
    frames of one video), so that one worker holds the whole group.
    """
    describe = InputDescriber(hash_inputs)
    result = PlanResult()
    plan_h, inputs_h, block_h = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    buffers: dict = {}
    buffered = 0

    def emit(members: list[dict]) -> None:
        n = len(result.shards)  # provisional: shards are numbered by their first index at the end
        shard = {"id": n, "name": f".{prefix}-emitted-{n:06d}", "count": len(members),
                 "first": min(r["index"] for r in members)}
        sink(shard, members)
        result.shards.append(shard)

    def emit_mixed(final: bool) -> None:
        """Partial groups, in order, concatenated and cut into full shards (the rest too if final)."""
        nonlocal buffered
        rest = [r for g in list(buffers) for r in buffers.pop(g)]
        while len(rest) >= shard_size or (final and rest):
            emit(rest[:shard_size])
            rest = rest[shard_size:]
        if rest:
            buffers[_MIXED] = rest
        buffered = len(rest)

    def describe_row(row: dict):
        size, mtime, digest = describe(row.get("_path"))
        if row.get("length") is not None:   # a tar member: its own length, the tar's mtime
            size = row["length"] if size is not None else None
        row["size"], row["mtime_ns"], row["sha256"] = size, mtime, digest
        return group_of(row) if group_of is not None else None

    def describe_part(part: list[dict]) -> list:
        return [describe_row(r) for r in part]

    # threads pay off for reads (headers, hashes); a stat of a cached path is cheaper than a hand-off
    pooled = threads > 1 and (group_of is not None or hash_inputs)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for chunk in _chunks(rows, CHUNK):
            if pooled:
                step = -(-len(chunk) // threads)
                parts = pool.map(describe_part, [chunk[i:i + step] for i in range(0, len(chunk), step)])
                groups = [g for part in parts for g in part]
            else:
                groups = describe_part(chunk)
            for row, g in zip(chunk, groups):
                plan_h.update(plan_line(row))
                line = input_line(row)
                inputs_h.update(line)
                block_h.update(line)
                result.total += 1
                if result.total % BLOCK == 0:
                    result.input_blocks.append(block_h.hexdigest()[:16])
                    block_h = hashlib.sha256()
                if sink is None:
                    continue
                if whole_groups:
                    if buffers and g not in buffers:
                        emit(buffers.pop(next(iter(buffers))))
                    buffers.setdefault(g, []).append(row)
                    continue
                buf = buffers.setdefault(g, [])
                buf.append(row)
                buffered += 1
                if len(buf) == shard_size:
                    emit(buffers.pop(g))
                    buffered -= shard_size
            if buffered > max_buffered_shards * shard_size:
                emit_mixed(final=False)
    if sink is not None:
        for g in list(buffers) if whole_groups else ():
            emit(buffers.pop(g))
        emit_mixed(final=True)
        _number_shards(result.shards, prefix, getattr(sink, "rename", None))
    if result.total % BLOCK:
        result.input_blocks.append(block_h.hexdigest()[:16])
    result.plan_hash, result.inputs_hash = plan_h.hexdigest(), inputs_h.hexdigest()
    return result


def _number_shards(shards: list[dict], prefix: str, rename) -> None:
    """Number shards in the order of their first sample (shard 0 starts with sample 0, and
    reading shards in name order follows the input order as far as grouping allows)."""
    shards.sort(key=lambda sh: sh["first"])
    for sid, shard in enumerate(shards):
        old = shard["name"]
        shard.update(id=sid, name=f"{prefix}-{sid:06d}")
        del shard["first"]
        if rename is not None:
            rename(old, shard["name"])


def changed_inputs(plan_dir: Path, shards: list[dict], old_blocks: list[str], new_blocks: list[str],
                   new_rows: Callable[[set[int]], dict[int, dict]]) -> list[str]:
    """Sources whose description differs between the recorded plan and a re-described one.

    Only blocks whose digest differs are looked at: their recorded rows are read from the
    shard files (streamed one file at a time), `new_rows(blocks)` gives the fresh ones.
    """
    blocks = {i for i, (a, b) in enumerate(zip(old_blocks, new_blocks)) if a != b}
    if not blocks:
        return []
    fresh = new_rows(blocks)
    out = []
    for shard in shards:
        for r in read_samples(plan_dir / f"{shard['name']}.parquet"):
            if r["index"] // BLOCK in blocks:
                n = fresh.get(r["index"], {})
                if any(n.get(k) != r.get(k) for k in INPUT_FIELDS):
                    out.append(r["source"])
    return sorted(set(out))


class FileSink:
    """Writes each shard's rows to plan_dir/{name}.parquet; `sync` makes them durable at the end.

    One fsync per file as it is written cost about 5 ms each here (50 s for a 10M-row plan);
    fsyncs issued together from a thread pool share the filesystem's journal commits.
    """

    def __init__(self, plan_dir: Path):
        self.plan_dir = plan_dir
        plan_dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, shard: dict, rows: list[dict]) -> None:
        write_samples(self.plan_dir / f"{shard['name']}.parquet", rows, sync=False)

    def sync(self, threads: int = 16) -> None:
        """fsync every file of plan_dir, then the folder itself."""
        def fsync(name: str) -> None:
            fd = os.open(self.plan_dir / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(fsync, os.listdir(self.plan_dir)))
        fsync_dir(self.plan_dir)

    def rename(self, old: str, new: str) -> None:
        os.replace(self.plan_dir / f"{old}.parquet", self.plan_dir / f"{new}.parquet")
