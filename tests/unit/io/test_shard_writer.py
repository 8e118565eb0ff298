"""The durable shard writer on real tar files: torn tails, a crash between rename and commit record, retry rebuild, refusals."""

from __future__ import annotations

import json
import os
import tarfile

import pytest

from pipeline.io.shards import END_OF_ARCHIVE, ShardPaths, ShardWriter, commit_holds, read_journal


def _row(key, status="ok"):
    return {"key": key, "status": status, "outputs": {"png": {}} if status == "ok" else {}}


def test_torn_tail_is_truncated_on_resume_and_commit_is_a_valid_tar(tmp_path):
    paths = ShardPaths(tmp_path, "x-000000")
    w = ShardWriter.resume(paths, mtime=1_700_000_000)
    w.append("00000000", {"png": b"A" * 700}, _row("00000000"))
    w.append("00000001", {}, _row("00000001", "failed_decode"))
    durable = w.end
    # a crash mid-append: member bytes written but no journal line, and a torn journal line
    w._tar.write(b"B" * 1500)
    w._tar.flush()
    w._journal.write(b'{"end": 99999, "row": {"key": "0000')
    w._journal.flush()
    w.abandon()
    assert len(read_journal(w.journal_path)) == 2

    w2 = ShardWriter.resume(paths, mtime=1_700_000_000)
    assert w2.token != w.token and w2.end == durable and os.path.getsize(w2.tar_path) == durable
    assert not w.tar_path.exists() and not w.journal_path.exists()  # superseded attempt removed
    w2.append("00000002", {"png": b"C" * 10, "json": b"{}"}, _row("00000002"))
    rec = w2.commit(["00000000", "00000001", "00000002"])
    assert commit_holds(paths, full=True)[1] is None
    with tarfile.open(paths.tar) as tf:
        names = [(m.name, m.mtime, tf.extractfile(m).read()) for m in tf]
    assert names == [("00000000.png", 1_700_000_000, b"A" * 700), ("00000002.png", 1_700_000_000, b"C" * 10),
                     ("00000002.json", 1_700_000_000, b"{}")]
    assert paths.tar.read_bytes().endswith(END_OF_ARCHIVE)
    assert rec["counts"] == {"ok": 2, "failed_decode": 1} and rec["tar"]["samples"] == 2
    assert [json.loads(line)["key"] for line in paths.manifest.read_text().splitlines()] == [
        "00000000", "00000001", "00000002"]


def test_crash_between_tar_rename_and_commit_record_recovers(tmp_path):
    paths = ShardPaths(tmp_path, "x-000001")
    w = ShardWriter.resume(paths, mtime=0)
    w.append("00000005", {"png": b"D" * 50}, _row("00000005"))
    w.commit(["00000005"])
    good = paths.tar.read_bytes()
    # simulate: the tar was renamed into place but the journal remains and the record is missing
    paths.commit.unlink()
    (paths.work_dir / f"{paths.name}.old.journal").write_text(
        json.dumps({"end": len(good) - len(END_OF_ARCHIVE), "row": _row("00000005")}) + "\n")
    assert commit_holds(paths)[1] == "no commit record"
    w2 = ShardWriter.resume(paths, mtime=0)
    assert list(w2.rows()) == ["00000005"]
    w2.commit(["00000005"])
    assert paths.tar.read_bytes() == good and commit_holds(paths, full=True)[1] is None


def test_retry_rebuilds_the_journal_from_a_committed_shard(tmp_path):
    paths = ShardPaths(tmp_path, "x-000002")
    w = ShardWriter.resume(paths, mtime=0)
    w.append("00000000", {}, _row("00000000", "failed_io"))
    w.append("00000001", {"png": b"E" * 600}, _row("00000001"))
    w.commit(["00000000", "00000001"])
    w2 = ShardWriter.resume(paths, mtime=0, from_commit=True)
    assert w2.rows()["00000000"]["status"] == "failed_io" and w2.end == 512 + 1024
    w2.append("00000000", {"png": b"F"}, _row("00000000"))
    rec = w2.commit(["00000000", "00000001"])
    assert rec["counts"] == {"ok": 2}
    with tarfile.open(paths.tar) as tf:
        assert [m.name for m in tf] == ["00000001.png", "00000000.png"]


def test_commit_refuses_missing_samples_and_member_names_are_checked(tmp_path):
    w = ShardWriter.resume(ShardPaths(tmp_path, "x-000003"), mtime=0)
    w.append("00000000", {"png": b"x"}, _row("00000000"))
    with pytest.raises(RuntimeError, match="1 samples missing"):
        w.commit(["00000000", "00000001"])
    with pytest.raises(ValueError, match="invalid sample key"):
        w.append("a.b", {"png": b"x"}, _row("a.b"))
    w.abandon()
