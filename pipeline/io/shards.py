"""Durable tar shards: per-sample append with a journal, commit records, manifests.

A shard being written lives in work/ as two files with a per-attempt token:
`{name}.{token}.tar` (tar members, no end-of-archive yet) and
`{name}.{token}.journal` (one JSON line per finished sample: its manifest row
and the tar offset where its members end). A sample is durable once its
members are fsynced and then its journal line is fsynced; anything past the
last journal line is garbage and is cut off on resume.

Committing: append the end-of-archive, fsync, rename into shards/, write the
manifest, then the commit record (each by temp file + rename). A shard is done
iff its commit record exists and the tar and manifest match it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from pipeline.io.atomic import atomic_write_text, fsync_dir

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def member_bytes(name: str, data: bytes, mtime: int) -> bytes:
    """One ustar member: header, data, zero padding to a 512-byte block."""
    if len(name.encode()) > 100:
        raise ValueError(f"tar member name longer than 100 bytes: {name!r}")
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(mtime), 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict") + data + b"\0" * (-len(data) % BLOCK)


def sample_bytes(key: str, members: dict[str, bytes], mtime: int) -> bytes:
    """All members of one sample, contiguous (webdataset groups by key)."""
    if not KEY_RE.match(key):
        raise ValueError(f"invalid sample key {key!r}")
    return b"".join(member_bytes(f"{key}.{ext}", data, mtime) for ext, data in members.items())


def file_digests(path: Path, chunk: int = 1 << 20) -> tuple[str, str, int]:
    """(sha256, md5, size) of a file in one pass."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            sha.update(block)
            md5.update(block)
            size += len(block)
    return sha.hexdigest(), md5.hexdigest(), size


def tar_members(path: Path) -> list[tuple[str, int, int]]:
    """(name, data offset, size) of every member, read with the stdlib tar parser."""
    with tarfile.open(path, "r:") as tf:
        return [(m.name, m.offset_data, m.size) for m in tf.getmembers()]


def _fsync_append(f, data: bytes) -> None:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())


def read_journal(path: Path) -> list[dict]:
    """Complete journal lines (a torn last line, from a crash mid-write, is ignored)."""
    out = []
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return out
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out


def latest_rows(entries: list[dict]) -> dict[str, dict]:
    """key -> the last journaled row for it (a retried sample supersedes its failure)."""
    rows: dict[str, dict] = {}
    for e in entries:
        rows[e["row"]["key"]] = e["row"]
    return rows


@dataclass
class ShardPaths:
    """Where one shard's files live inside a run directory."""

    root: Path
    name: str  # e.g. "stylized-000003"

    @property
    def tar(self) -> Path:
        return self.root / "shards" / f"{self.name}.tar"

    @property
    def manifest(self) -> Path:
        return self.root / "manifests" / f"{self.name}.jsonl"

    @property
    def commit(self) -> Path:
        return self.root / "commits" / f"{self.name}.json"

    @property
    def lease(self) -> Path:
        return self.root / "leases" / f"{self.name}.lease"

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    def work_files(self) -> list[tuple[Path, Path]]:
        """(tar, journal) pairs of every attempt that left a journal."""
        pairs = []
        for j in sorted(self.work_dir.glob(f"{self.name}.*.journal")):
            pairs.append((j.with_suffix(".tar"), j))
        return pairs


def read_commit(paths: ShardPaths) -> dict | None:
    try:
        return json.loads(paths.commit.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def read_manifest(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _size_problem(path: Path, expected: int) -> str | None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return f"{path.name} is missing"
    return None if size == expected else f"{path.name} has {size} bytes, commit record says {expected}"


def commit_holds(paths: ShardPaths, full: bool = False) -> tuple[dict | None, str | None]:
    """(record, problem): whether the shard's tar and manifest match its commit record.

    The quick check (sizes and the manifest hash) is what resume uses; `full`
    also hashes the tar and counts its members (what `nst verify` uses).
    """
    rec = read_commit(paths)
    if rec is None:
        return None, "no commit record"
    problem = _size_problem(paths.tar, rec["tar"]["size"])
    if problem is not None:
        return rec, problem
    if not full and rec["manifest"].get("bytes") is not None:  # sizes only: status reads no rows
        return rec, _size_problem(paths.manifest, rec["manifest"]["bytes"])
    try:
        man = paths.manifest.read_bytes()
    except FileNotFoundError:
        return rec, f"{paths.manifest.name} is missing"
    if hashlib.sha256(man).hexdigest() != rec["manifest"]["sha256"]:
        return rec, f"{paths.manifest.name} does not match its commit record (sha256)"
    if full:
        sha, md5, _ = file_digests(paths.tar)
        if sha != rec["tar"]["sha256"]:
            return rec, f"{paths.tar.name} sha256 {sha[:16]}... != commit record {rec['tar']['sha256'][:16]}..."
        try:
            n = len(tar_members(paths.tar))
        except (tarfile.TarError, OSError) as exc:
            return rec, f"{paths.tar.name} is not a readable tar: {exc}"
        if n != rec["tar"]["members"]:
            return rec, f"{paths.tar.name} has {n} members, commit record says {rec['tar']['members']}"
    return rec, None


class ShardWriter:
    """Appends finished samples to one shard's work files and commits it.

    Open with `ShardWriter.resume(paths, mtime)`: it carries over the durable
    prefix of the best earlier attempt (or of the committed shard, for a retry)
    into fresh per-attempt files, so a process that lost its lease but still
    runs can never write into the files this attempt uses.
    """

    def __init__(self, paths: ShardPaths, token: str, mtime: int):
        self.paths, self.token, self.mtime = paths, token, int(mtime)
        paths.work_dir.mkdir(parents=True, exist_ok=True)
        self.tar_path = paths.work_dir / f"{paths.name}.{token}.tar"
        self.journal_path = paths.work_dir / f"{paths.name}.{token}.journal"
        self.entries: list[dict] = []
        self.end = 0
        self._tar = None
        self._journal = None

    # -- opening ---------------------------------------------------------------------------------
    @classmethod
    def resume(cls, paths: ShardPaths, mtime: int, from_commit: bool = False) -> "ShardWriter":
        token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        w = cls(paths, token, mtime)
        source, entries = w._best_previous(from_commit)
        old = [p for p in paths.work_dir.glob(f"{paths.name}.*") if w.token not in p.name]
        end = entries[-1]["end"] if entries else 0
        with open(w.tar_path, "xb") as out:
            if end:
                with open(source, "rb") as src:
                    remaining = end
                    while remaining:
                        block = src.read(min(remaining, 1 << 20))
                        if not block:
                            raise OSError(f"{source} is shorter than its journal says ({end} bytes)")
                        out.write(block)
                        remaining -= len(block)
            out.flush()
            os.fsync(out.fileno())
        with open(w.journal_path, "xb") as j:
            _fsync_append(j, b"".join(json.dumps(e, sort_keys=True).encode() + b"\n" for e in entries))
        fsync_dir(paths.work_dir)
        for p in old:  # superseded by the copy just made durable
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        w.entries, w.end = entries, end
        w._tar = open(w.tar_path, "ab")
        w._journal = open(w.journal_path, "ab")
        return w

    def _best_previous(self, from_commit: bool) -> tuple[Path | None, list[dict]]:
        """The source tar and durable journal entries to continue from."""
        best: tuple[Path | None, list[dict]] = (None, [])
        for tar, journal in self.paths.work_files():
            entries = read_journal(journal)
            source = tar if tar.exists() else self.paths.tar  # renamed at commit, record not yet written
            try:
                size = source.stat().st_size
            except FileNotFoundError:
                continue
            while entries and entries[-1]["end"] > size:
                entries.pop()
            if len(entries) > len(best[1]):
                best = (source, entries)
        if best[1] or not from_commit:
            return best
        return self.paths.tar, self._entries_from_commit()

    def _entries_from_commit(self) -> list[dict]:
        """Journal entries rebuilt from a committed shard (for --retry-failed)."""
        rows = read_manifest(self.paths.manifest)
        ends: dict[str, int] = {}
        for name, offset, size in tar_members(self.paths.tar):
            key = name.split(".", 1)[0]
            ends[key] = max(ends.get(key, 0), offset + size + (-size % BLOCK))
        entries, end = [], 0
        for row in sorted(rows, key=lambda r: ends.get(r["key"], -1)):
            end = max(end, ends.get(row["key"], 0))
            entries.append({"end": end, "row": row})
        return entries

    # -- writing ---------------------------------------------------------------------------------
    def rows(self) -> dict[str, dict]:
        return latest_rows(self.entries)

    def members(self, key: str) -> dict[str, bytes]:
        """The members (extension -> bytes) of a sample already durable in this attempt's tar
        (its latest entry); empty if it has none (not written, or a failed row)."""
        span, start = None, 0
        for e in self.entries:
            if e["row"].get("key") == key:
                span = (start, e["end"])
            start = e["end"]
        if span is None or span[0] == span[1]:
            return {}
        with open(self.tar_path, "rb") as f:
            f.seek(span[0])
            data = f.read(span[1] - span[0])
        out = {}
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            for m in tf:
                if m.isfile() and m.name.startswith(f"{key}."):
                    out[m.name[len(key) + 1:]] = tf.extractfile(m).read()
        return out

    def append(self, key: str, members: dict[str, bytes], row: dict) -> None:
        """Make one sample durable: members first, then its journal line."""
        data = sample_bytes(key, members, self.mtime) if members else b""
        if data:
            _fsync_append(self._tar, data)
        entry = {"end": self.end + len(data), "row": row}
        _fsync_append(self._journal, json.dumps(entry, sort_keys=True).encode() + b"\n")
        self.entries.append(entry)
        self.end = entry["end"]

    def close(self) -> None:
        for f in (self._tar, self._journal):
            if f is not None and not f.closed:
                f.close()

    def commit(self, planned_keys: list[str], extra: dict | None = None) -> dict:
        """Finish the tar and publish it with its manifest and commit record."""
        rows = self.rows()
        missing = [k for k in planned_keys if k not in rows]
        if missing:
            raise RuntimeError(f"cannot commit {self.paths.name}: {len(missing)} samples missing")
        self._tar.truncate(self.end)  # nothing past the last durable sample
        _fsync_append(self._tar, END_OF_ARCHIVE)
        self.close()
        for d in (self.paths.tar.parent, self.paths.manifest.parent, self.paths.commit.parent):
            d.mkdir(parents=True, exist_ok=True)
        os.replace(self.tar_path, self.paths.tar)
        fsync_dir(self.paths.tar.parent)
        fsync_dir(self.paths.work_dir)
        manifest = "".join(json.dumps(rows[k], sort_keys=True) + "\n" for k in planned_keys)
        atomic_write_text(self.paths.manifest, manifest)
        sha, md5, size = file_digests(self.paths.tar)
        counts: dict[str, int] = {}
        errors: dict[str, int] = {}
        for k in planned_keys:
            counts[rows[k]["status"]] = counts.get(rows[k]["status"], 0) + 1
            if rows[k]["status"] != "ok":
                e = f"{rows[k]['status']}: {rows[k].get('error', '')}"
                errors[e] = errors.get(e, 0) + 1
        times = [(r.get("started_at"), r.get("finished_at")) for r in rows.values() if r.get("finished_at")]
        n_members = len(tar_members(self.paths.tar))
        record = {
            "shard": self.paths.name,
            "tar": {"path": f"shards/{self.paths.tar.name}", "sha256": sha, "md5": md5, "size": size,
                    "members": n_members, "samples": counts.get("ok", 0)},
            "manifest": {"path": f"manifests/{self.paths.manifest.name}",
                         "sha256": hashlib.sha256(manifest.encode()).hexdigest(), "rows": len(planned_keys),
                         "bytes": len(manifest.encode())},
            "counts": counts,
            # what `nst status` needs, so that it never reads a committed shard's rows
            "errors": dict(sorted(errors.items(), key=lambda e: -e[1])[:20]),
            "started_at": min((a or b for a, b in times), default=None),
            "finished_at": max((b for _, b in times), default=None),
            "attempt": self.token,
            **(extra or {}),
        }
        atomic_write_text(self.paths.commit, json.dumps(record, indent=1, sort_keys=True))
        try:
            self.journal_path.unlink()
        except FileNotFoundError:
            pass
        return record

    def abandon(self) -> None:
        """Stop writing; the durable prefix stays for the next attempt. Never raises: bytes
        still buffered (a write that failed on a full disk) lie past the last journal line,
        which the next attempt cuts off anyway."""
        for f in (self._tar, self._journal):
            try:
                if f is not None and not f.closed:
                    f.close()
            except OSError:
                pass


def remove_work_files(paths: ShardPaths) -> None:
    """Drop leftovers of attempts on a shard that is committed (call only while holding its lease)."""
    for pair in paths.work_files():
        for p in pair:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
