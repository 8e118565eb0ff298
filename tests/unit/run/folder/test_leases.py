"""O_EXCL shard leases: exclusive, released, taken over from a dead holder or an old heartbeat."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from pipeline.run.folder.leases import is_stale, read_lease, try_acquire


def test_lease_is_exclusive_and_released(tmp_path):
    path = tmp_path / "leases" / "s.lease"
    a = try_acquire(path, "a", ttl=60)
    assert a is not None and try_acquire(path, "b", ttl=60) is None
    info = read_lease(path)
    assert info["holder"] == "a" and info["pid"] == os.getpid() and "host" in info
    a.release()
    assert not path.exists() and try_acquire(path, "b", ttl=60) is not None


def test_lease_of_a_dead_process_or_old_heartbeat_is_taken_over(tmp_path):
    path = tmp_path / "s.lease"
    code = ("import sys; from pathlib import Path; from pipeline.run.folder.leases import try_acquire; "
            "assert try_acquire(Path(sys.argv[1]), 'gone', ttl=60)")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert is_stale(read_lease(path), ttl=60)  # holder pid no longer exists
    mine = try_acquire(path, "me", ttl=60)
    assert mine is not None and read_lease(path)["holder"] == "me"
    # a live holder whose heartbeat is older than the TTL is also taken over
    old = time.time() - 120
    os.utime(path, (old, old))
    assert not mine.still_ours() or is_stale(read_lease(path), ttl=60)
    other = try_acquire(path, "other", ttl=60)
    assert other is not None and not mine.still_ours()
    assert try_acquire(path, "third", ttl=60) is None
