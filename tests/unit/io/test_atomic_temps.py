"""Temporaries carry their writer's pid, so a resume removes a killed writer's and never a live one's;
BatchWriter publishes whole files only."""

from __future__ import annotations

import os
import subprocess
import sys

from pipeline.io.atomic import TEMP_RE, BatchWriter, remove_stale_temps, temp_beside


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temps_of_dead_writers_go_and_live_ones_stay(tmp_path):
    fd, mine = temp_beside(tmp_path / "a.png")
    os.close(fd)
    assert TEMP_RE.match(os.path.basename(mine))
    dead = tmp_path / f".b.png.{_dead_pid()}-0123456789ab.tmp"
    dead.write_bytes(b"half")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        other = tmp_path / f".c.png.{live.pid}-0123456789ab.tmp"
        other.write_bytes(b"being written")
        keep = tmp_path / ".hidden.tmp"  # not a name temp_beside makes
        keep.write_bytes(b"")
        assert remove_stale_temps(tmp_path) == 1
        assert not dead.exists() and other.exists() and keep.exists() and os.path.exists(mine)
    finally:
        live.kill()
        live.wait()


def test_batch_writer_publishes_on_flush_into_new_folders(tmp_path):
    batch = BatchWriter(threads=2)
    batch.add(tmp_path / "x" / "y" / "one.png", b"1" * 100)
    batch.add(tmp_path / "x" / "two.png", b"2" * 10)
    assert not (tmp_path / "x" / "two.png").exists()  # nothing named before flush
    assert batch.flush() == 2
    assert (tmp_path / "x" / "y" / "one.png").read_bytes() == b"1" * 100
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["two.png", "y"]  # no temporaries left
    batch.add(tmp_path / "x" / "three.png", b"3")
    batch.discard()
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["two.png", "y"]
