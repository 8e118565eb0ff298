"""The streaming planner: shards cut from a stream, grouping, bounded buffers, change detection."""

from __future__ import annotations

import os

from pipeline.run.folder.plan_samples import read_samples
from pipeline.run.folder.stream_plan import FileSink, changed_inputs, plan_rows


def _rows(files, n=None):
    for i, f in enumerate(files if n is None else [files[j % len(files)] for j in range(n)]):
        yield {"index": i, "key": None, "source": os.path.basename(f), "styles": ["s.png"], "seed": i,
               "extra": "{}", "_path": str(f)}


def _files(tmp_path, n):
    out = []
    for i in range(n):
        p = tmp_path / f"f{i}.png"
        p.write_bytes(b"x" * (i + 1))
        out.append(p)
    return out


def test_input_order_shards_and_rows_round_trip(tmp_path):
    files = _files(tmp_path, 7)
    res = plan_rows(_rows(files), 3, "s", FileSink(tmp_path / "plan"), threads=2)
    assert [s["count"] for s in res.shards] == [3, 3, 1] and res.total == 7
    rows = [r for s in res.shards for r in read_samples(tmp_path / "plan" / f"{s['name']}.parquet")]
    assert [r["index"] for r in rows] == list(range(7))
    assert rows[4]["size"] == 5 and rows[4]["mtime_ns"] == os.stat(files[4]).st_mtime_ns and rows[4]["sha256"] is None


def test_grouping_and_bounded_buffers(tmp_path):
    files = _files(tmp_path, 10)
    seen = []
    res = plan_rows(_rows(files), 2, "s", lambda sh, rows: seen.append([r["index"] for r in rows]),
                    group_of=lambda r: r["index"] % 2, threads=1)
    assert seen == [[0, 2], [1, 3], [4, 6], [5, 7], [8, 9]]
    assert res.total == 10
    seen.clear()  # many groups, room for one shard's worth of partial groups: cut early, nothing lost
    plan_rows(_rows(files), 4, "s", lambda sh, rows: seen.append([r["index"] for r in rows]),
              group_of=lambda r: r["index"] % 5, threads=1, max_buffered_shards=1)
    assert sorted(i for s in seen for i in s) == list(range(10)) and max(len(s) for s in seen) <= 4


def test_hash_inputs_and_change_detection(tmp_path):
    files = _files(tmp_path, 6)
    plan_dir = tmp_path / "plan"
    first = plan_rows(_rows(files), 4, "s", FileSink(plan_dir), hash_inputs=True)
    assert read_samples(plan_dir / "s-000000.parquet")[0]["sha256"] is not None
    same = plan_rows(_rows(files), 4, "s", None, hash_inputs=True)   # a resume's check: digests only
    assert (same.plan_hash, same.inputs_hash, same.input_blocks) == (first.plan_hash, first.inputs_hash,
                                                                     first.input_blocks)
    files[5].write_bytes(b"y" * 6)               # same size; content and mtime differ
    os.utime(files[5], ns=(1, 1))
    again = plan_rows(_rows(files), 4, "s", None, hash_inputs=True)
    assert again.plan_hash == first.plan_hash and again.inputs_hash != first.inputs_hash

    def fresh(blocks):
        out = {}
        plan_rows((r for r in _rows(files)), 4, "s", lambda sh, rows: out.update({r["index"]: r for r in rows}),
                  hash_inputs=True)
        return out
    assert changed_inputs(plan_dir, first.shards, first.input_blocks, again.input_blocks, fresh) == ["f5.png"]
    before = plan_rows(_rows(files), 4, "s", None)              # size + mtime only (the default)
    os.utime(files[2], ns=(5, 5))
    assert plan_rows(_rows(files), 4, "s", None).inputs_hash != before.inputs_hash


def test_repeated_files_are_described_once_per_path(tmp_path):
    files = _files(tmp_path, 3)
    res = plan_rows(_rows(files, 30), 10, "s", FileSink(tmp_path / "plan"))
    assert res.total == 30 and len(res.shards) == 3


def test_whole_groups_make_one_shard_per_group_whatever_the_shard_size(tmp_path):
    """`nst video`: a clip's frames (a run of equal group keys) are one shard, never cut, never mixed."""
    files = _files(tmp_path, 10)
    clips = [0, 0, 0, 1, 1, 1, 1, 1, 2, 2]  # clip lengths 3, 5, 2
    seen = []
    res = plan_rows(_rows(files), 2, "s", lambda sh, rows: seen.append([r["index"] for r in rows]),
                    group_of=lambda r: clips[r["index"]], threads=3, whole_groups=True)
    assert sorted(seen) == [[0, 1, 2], [3, 4, 5, 6, 7], [8, 9]]
    assert [s["count"] for s in res.shards] == [3, 5, 2] and [s["name"] for s in res.shards] == \
        ["s-000000", "s-000001", "s-000002"]
