"""Building blocks of the dataset pipeline on real files: DATA formats, style assignment,
the durable shard writer (torn tails, resume, retry rebuild), and O_EXCL leases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time

import pytest

from dataset_util import picture
from pipeline.errors import BadInput
from pipeline.io.reader import InputRow, read_data, read_styles
from pipeline.io.shards import END_OF_ARCHIVE, ShardPaths, ShardWriter, commit_holds, read_journal
from pipeline.run.folder.leases import is_stale, read_lease, try_acquire
from pipeline.run.task import Planned, number, sample_seed
from pipeline.tasks.stylize import assign_styles


# -- DATA formats ----------------------------------------------------------------------------------
def test_directory_is_recursive_sorted_and_case_insensitive(tmp_path):
    for name in ("b.JPG", "a.png", "sub/c.Png", "sub/deeper/d.webp", ".hidden/e.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "readme.txt").write_text("no")
    rows = read_data(tmp_path)
    assert [os.path.relpath(r.path, tmp_path) for r in rows] == ["a.png", "b.JPG", "sub/c.Png", "sub/deeper/d.webp"]


def test_text_list_resolves_relative_to_the_list(tmp_path):
    (tmp_path / "l.txt").write_text("# inputs\nimgs/x.png\n\n/abs/y.jpg\n")
    assert list(read_data(tmp_path / "l.txt")) == [InputRow(str(tmp_path / "imgs/x.png"), rel="imgs/x.png"),
                                                   InputRow("/abs/y.jpg", rel="/abs/y.jpg")]


def test_csv_with_style_and_key_columns(tmp_path):
    (tmp_path / "d.csv").write_text("path,style,key\nx.png,s.png,cat-1\ny.png,,\n")
    assert list(read_data(tmp_path / "d.csv")) == [
        InputRow(str(tmp_path / "x.png"), str(tmp_path / "s.png"), "cat-1", "x.png"),
        InputRow(str(tmp_path / "y.png"), rel="y.png")]
    (tmp_path / "bad.csv").write_text("file\nx.png\n")
    with pytest.raises(BadInput, match="no 'path' column"):
        list(read_data(tmp_path / "bad.csv"))


def test_jsonl_with_optional_columns_and_errors(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"path": "x.png", "key": "k"}\n\n{"path": "/y.png", "style": "s.png"}\n')
    assert list(read_data(tmp_path / "d.jsonl")) == [
        InputRow(str(tmp_path / "x.png"), None, "k", "x.png"), InputRow("/y.png", str(tmp_path / "s.png"), rel="/y.png")]
    (tmp_path / "e.jsonl").write_text('{"path": "x.png"}\n{"style": "s.png"}\n')
    with pytest.raises(BadInput, match="line 2: missing or empty 'path'"):
        list(read_data(tmp_path / "e.jsonl"))
    with pytest.raises(BadInput, match="DATA not found"):
        read_data(tmp_path / "nope")
    (tmp_path / "x.yaml").write_text("a: 1")
    with pytest.raises(BadInput, match="not a directory, .txt, .csv, .jsonl"):
        read_data(tmp_path / "x.yaml")


def test_styles_from_files_and_directories(tmp_path):
    picture(tmp_path / "st" / "b.png")
    picture(tmp_path / "st" / "a.jpg")
    one = picture(tmp_path / "one.png")
    assert read_styles([one, tmp_path / "st"]) == [str(one), str(tmp_path / "st/a.jpg"), str(tmp_path / "st/b.png")]
    with pytest.raises(BadInput, match="style not found"):
        read_styles([tmp_path / "missing.png"])


# -- style assignment ------------------------------------------------------------------------------
ROWS = [InputRow(f"c{i}.png") for i in range(5)]
STYLES = ["s0.png", "s1.png", "s2.png"]


def test_assign_one_uses_every_style_for_every_content():
    plan = assign_styles(ROWS, STYLES, "one", seed=0)
    assert [p.styles for p in plan] == [tuple(STYLES)] * 5


def test_assign_cycle():
    plan = assign_styles(ROWS, STYLES, "cycle", seed=0)
    assert [p.styles[0] for p in plan] == ["s0.png", "s1.png", "s2.png", "s0.png", "s1.png"]


def test_assign_random_is_seeded_and_reproducible():
    a = [p.styles for p in assign_styles(ROWS * 4, STYLES, "random", seed=3)]
    assert a == [p.styles for p in assign_styles(ROWS * 4, STYLES, "random", seed=3)]
    assert a != [p.styles for p in assign_styles(ROWS * 4, STYLES, "random", seed=4)]
    assert {s for (s,) in a} == set(STYLES)


def test_assign_all_is_the_cross_product_and_rows_may_fix_their_style():
    plan = assign_styles(ROWS[:2], STYLES, "all", seed=0)
    assert [(p.source, p.styles[0]) for p in plan] == [(c.path, s) for c in ROWS[:2] for s in STYLES]
    fixed = list(assign_styles([InputRow("x.png", "mine.png", "k1")], STYLES, "all", seed=0))
    assert fixed == [Planned("x.png", ("mine.png",), {"assign": "row", "source_key": "k1"})]
    with pytest.raises(BadInput, match="--assign must be one of"):
        assign_styles(ROWS, STYLES, "some", seed=0)


def test_keys_and_seeds_depend_only_on_index():
    samples = number([Planned(f"{i}.png") for i in range(3)], run_seed=7)
    assert [s.key for s in samples] == ["00000000", "00000001", "00000002"]
    assert samples[2].seed == sample_seed(7, 2) != sample_seed(8, 2)


# -- shard writer ----------------------------------------------------------------------------------
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


# -- leases ----------------------------------------------------------------------------------------
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


def test_batches_sit_at_fixed_positions_in_the_shard():
    from pipeline.run.execute.worker import batches

    samples = number([Planned(f"{i}.png") for i in range(10)], run_seed=0)
    shard = samples[4:10]  # a shard starting at global index 4
    full = [[s.index for s in b] for b in batches(shard, shard, 4)]
    assert full == [[4, 5, 6, 7], [8, 9]]
    resumed = [[s.index for s in b] for b in batches(shard[2:], shard, 4)]  # 4 and 5 already done
    assert resumed == [[6, 7], [8, 9]]
    # with batch keys (e.g. two working sizes interleaved), positions count within each key
    keys = {s.index: "wide" if s.index % 2 == 0 else "tall" for s in shard}
    grouped = [[s.index for s in b] for b in batches(shard, shard, 2, keys)]
    assert grouped == [[4, 6], [5, 7], [8], [9]]
    resumed = [[s.index for s in b] for b in batches([s for s in shard if s.index != 6], shard, 2, keys)]
    assert resumed == [[4], [5, 7], [8], [9]]  # 4's batch-mate is done; nothing else moves


def test_image_size_reads_the_header_with_exif_rotation(tmp_path):
    from PIL import Image

    from pipeline.io.images import image_size, load_image

    img = Image.new("RGB", (40, 24), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    img.save(tmp_path / "r.jpg", exif=exif.tobytes())
    img.save(tmp_path / "p.png")
    assert image_size(tmp_path / "r.jpg") == (24, 40) == load_image(tmp_path / "r.jpg").size
    assert image_size(tmp_path / "p.png") == (40, 24)
    img.save(tmp_path / "rp.png", exif=exif.tobytes())  # a PNG's eXIf chunk, before its pixels
    assert image_size(tmp_path / "rp.png") == (24, 40) == load_image(tmp_path / "rp.png").size
    whole = (tmp_path / "p.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])  # header intact, pixels cut off
    assert image_size(tmp_path / "cut.png") == (40, 24)
    (tmp_path / "bad.png").write_bytes(b"junk")
    assert image_size(tmp_path / "bad.png") is None and image_size(tmp_path / "missing.png") is None


def test_failure_classes(tmp_path):
    from PIL import Image

    from pipeline.io.images import load_image
    from pipeline.run.task import NonFiniteResult, classify

    (tmp_path / "bad.png").write_bytes(b"junk")
    for path, status in ((tmp_path / "bad.png", "failed_decode"), (tmp_path / "missing.png", "failed_missing"),
                         (tmp_path, "failed_io")):
        with pytest.raises(Exception) as info:
            load_image(path)
        assert classify(info.value) == status
    picture(tmp_path / "big.png", (64, 64))
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 1000  # PIL refuses images over 2x this many pixels
    try:
        with pytest.raises(Exception) as info:
            load_image(tmp_path / "big.png")
    finally:
        Image.MAX_IMAGE_PIXELS = old
    assert classify(info.value) == "skipped_too_large"
    assert classify(NonFiniteResult("nan")) == "failed_nan"
    assert classify(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")) == "failed_oom"
    assert classify(KeyError("x")) == "failed_error"


def test_throughput_counts_batches_from_their_start():
    from pipeline.run.views.status import throughput

    batch = [(1010.0 + i * 1e-3, 1000.0, 1) for i in range(8)]  # (finished, started, samples): 8 in 10 s
    assert abs(throughput(batch, now=1020.0) - 8 / 10.008 * 3600) < 1
    assert throughput([], now=0) is None
