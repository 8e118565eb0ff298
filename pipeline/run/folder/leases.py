"""Per-shard leases: one O_EXCL file per shard in DIR/leases, with a heartbeat.

Any number of workers (Lightning ranks, SLURM array tasks, a second `nst
stylize` on the same DIR) claim shards through these files, so no shard is
worked on twice. The heartbeat is the lease file's mtime, refreshed by a
background thread; a lease is stale when its heartbeat is older than the TTL,
or at once when its holder ran on this host and that process is gone.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from pipeline.io.atomic import pid_alive, temp_beside
from pipeline.slurm_env import holder_info

HOST = socket.gethostname()


def read_lease(path: Path) -> dict | None:
    try:
        info = json.loads(path.read_text() or "{}")
        info["heartbeat"] = path.stat().st_mtime
        return info
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_stale(info: dict | None, ttl: float, now: float | None = None) -> bool:
    if info is None:
        return False
    now = time.time() if now is None else now
    if info.get("host") == HOST and isinstance(info.get("pid"), int) and not pid_alive(info["pid"]):
        return True
    return now - info.get("heartbeat", now) > ttl


class Lease:
    """A held lease; `release()` removes it if it is still ours."""

    def __init__(self, path: Path, token: str):
        self.path, self.token = path, token
        self._checked_at = 0.0

    def still_ours(self, max_age: float = 0.0) -> bool:
        """Whether the lease file still holds our token. max_age > 0 trusts a positive answer
        that old (seconds): the per-batch check of tiny batches read the file 100 times a second,
        while a takeover needs the lease to be stale for its TTL. Commits check fresh."""
        now = time.monotonic()
        if max_age > 0 and now - self._checked_at < max_age:
            return True
        info = read_lease(self.path)
        ours = info is not None and info.get("token") == self.token
        if ours:
            self._checked_at = now
        return ours

    def touch(self) -> None:
        try:
            os.utime(self.path)
        except FileNotFoundError:
            pass

    def release(self) -> None:
        if self.still_ours():
            try:
                os.unlink(self.path)
            except OSError:  # gone, or the folder became read-only: stale once this process ends
                pass


def _create(path: Path, holder: str, ttl: float | None = None) -> Lease | None:
    token = uuid.uuid4().hex
    info = {"token": token, "holder": holder, "host": HOST, "pid": os.getpid(), "started": time.time(),
            "ttl": ttl, **holder_info()}  # SLURM job/array ids, so `nst status` can name the worker
    # Written whole under a temporary name, then linked into place (exclusive like O_EXCL): a worker
    # killed mid-write leaves no empty lease, which nobody could judge stale before the TTL.
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return None
    finally:
        os.unlink(tmp)
    return Lease(path, token)


def try_acquire(path: Path, holder: str, ttl: float) -> Lease | None:
    """The lease if we got it (fresh or taken over from a stale holder), else None."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lease = _create(path, holder, ttl)
    if lease is not None:
        return lease
    info = read_lease(path)
    if not is_stale(info, ttl):
        return None
    # Take over: move the stale file aside (only one contender's rename succeeds), make
    # sure what we moved is the stale lease we judged, then create ours exclusively.
    aside = path.with_name(f"{path.name}.stale.{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return None
    moved = read_lease(aside)
    if moved is None or moved.get("token") != info.get("token"):
        try:
            os.link(aside, path)  # put back a lease that someone else just created
        except FileExistsError:
            pass
        os.unlink(aside)
        return None
    os.unlink(aside)
    return _create(path, holder, ttl)


class Heartbeat:
    """Background thread that refreshes the current lease every `interval` seconds."""

    def __init__(self, interval: float):
        self.interval = interval
        self.lease: Lease | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nst-lease-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            lease = self.lease
            if lease is not None:
                lease.touch()

    def stop(self) -> None:
        self._stop.set()
