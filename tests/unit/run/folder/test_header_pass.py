"""The size-ordered plan reads each distinct image header once, and groups exactly as reading
every row's header did (issue 28)."""

from __future__ import annotations

import os
import threading

import pytest
from dataset_util import picture
from PIL import Image

from pipeline.io.headers import HEADERS, HeaderCache
from pipeline.io.images import image_size
from pipeline.run.folder.plan import _KeyCheck, _rows, plan_into
from pipeline.run.folder.plan_samples import read_samples
from pipeline.run.folder.stream_plan import FileSink, plan_rows
from pipeline.run.task import Sample
from pipeline.tasks.registry import method_config, method_task


def _dataset(tmp_path, rows: int):
    """Distinct files of four working sizes (one a JPEG whose EXIF turns it), an undecodable
    one, and a CSV of `rows` rows naming them over and over in a scrambled order."""
    data = tmp_path / "data"
    files = [picture(data / f"p{i:02d}.png", size=((32, 32), (32, 24), (24, 32))[i % 3], seed=i) for i in range(9)]
    turned = data / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: a 40x20 file is a 20x40 image
    Image.new("RGB", (40, 20), (200, 10, 10)).save(turned, exif=exif.tobytes())
    broken = data / "broken.png"
    broken.write_bytes(b"not an image")
    files += [turned, broken]
    lines = ["path"] + [os.path.relpath(files[(i * 7 + i // 11) % len(files)], tmp_path) for i in range(rows)]
    listing = tmp_path / "list.csv"
    listing.write_text("\n".join(lines) + "\n")
    styles = [picture(tmp_path / "s.png", seed=99), picture(tmp_path / "t.png", seed=98)]
    return listing, styles, files


def _task(listing, styles, assign="one"):
    cfg = method_config("stylize", "default", {"size": 16, "iterations": 1}, [])
    return method_task("stylize", cfg, data=listing, styles=styles, assign=assign)


def _table(result, plan_dir):
    return [(s["name"], s["count"], [r["index"] for r in read_samples(plan_dir / f"{s['name']}.parquet")])
            for s in result.shards]


@pytest.mark.parametrize("styles,assign", [(1, "one"), (2, "cycle")])
def test_each_distinct_file_read_once_and_the_shard_table_unchanged(tmp_path, styles, assign):
    listing, style_files, files = _dataset(tmp_path, 3000)
    task = _task(listing, style_files[:styles], assign)  # cycle: each file comes with both styles
    pairs = {(r["_source"], tuple(r["styles"])) for r in _rows(task, task.seed())}
    assert len(pairs) == len(files) * styles  # with two styles, every file comes with each of them
    HEADERS.clear()
    before = HEADERS.reads
    _, cached = plan_into(task, 7, tmp_path / "cached", hash_inputs=False)
    assert HEADERS.reads - before == len(files)  # 3000 rows, 8 threads, 11 files: 11 header reads

    # the plan as it was made before: every row's header read with image_size, nothing cached
    reads = []

    def per_row(row):
        reads.append(row["_source"])
        sample = Sample(row["index"], row["key"] or "", row["_source"], tuple(row["styles"]), row["seed"])
        return task.shard_key(sample)   # no `planned` stamp: image_size of the file itself
    reference_dir = tmp_path / "reference"

    reference = plan_rows(_KeyCheck()(_rows(task, task.seed())), 7, task.shard_prefix, FileSink(reference_dir),
                          group_of=per_row)
    assert len(reads) == 3000
    assert _table(cached, tmp_path / "cached") == _table(reference, reference_dir)
    assert (cached.plan_hash, cached.inputs_hash) == (reference.plan_hash, reference.inputs_hash)
    keys = {task.shard_key(Sample(0, "", str(f), (str(style_files[0]),), 0)) for f in files}
    assert {k[0] for k in keys if k} == {(16, 16), (16, 12), (12, 16), (8, 16)} and None in keys


def test_a_changed_file_is_read_again(tmp_path):
    p = picture(tmp_path / "a.png", size=(32, 24))
    cache = HeaderCache()
    st = os.stat(p)
    assert cache.size(str(p), st.st_size, st.st_mtime_ns) == (32, 24)
    assert cache.size(str(p), st.st_size, st.st_mtime_ns) == (32, 24) and cache.reads == 1
    picture(p, size=(24, 40))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    st = os.stat(p)
    assert cache.size(str(p), st.st_size, st.st_mtime_ns) == (24, 40) and cache.reads == 2


def test_threads_asking_for_one_file_at_once_share_one_read(tmp_path):
    p = picture(tmp_path / "a.png", size=(24, 32))
    st = os.stat(p)
    cache = HeaderCache()
    start = threading.Barrier(16)
    answers = []

    def ask():
        start.wait()
        answers.append(cache.size(str(p), st.st_size, st.st_mtime_ns))
    threads = [threading.Thread(target=ask) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [(24, 32)] * 16 and cache.reads == 1


def test_a_full_cache_forgets_and_still_answers(tmp_path):
    paths = [picture(tmp_path / f"{i}.png", size=(16 + i, 16)) for i in range(5)]
    cache = HeaderCache(limit=2)
    for _ in range(2):
        for p in paths:
            st = os.stat(p)
            assert cache.size(str(p), st.st_size, st.st_mtime_ns) == image_size(p)
    assert cache.reads == 10 and len(cache._known) <= 2
