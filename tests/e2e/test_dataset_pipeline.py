"""End-to-end `nst stylize` with the real VGG16 on tiny images, as real processes.

One 2-worker run (DDP over gloo, 2 CPU processes) with a corrupt input among good
ones is shared by several checks: exit status, failed row, verify, status --json,
determinism against a 1-worker run, refusal of changed settings, tamper detection.
"""

from __future__ import annotations

import io
import json
import shutil

import pytest
from PIL import Image

from dataset_util import TINY, manifest_rows, nst, picture, pictures_and_style, tar_samples
from pipeline.errors import EXIT_OK, EXIT_RUN_MISMATCH, EXIT_SAMPLES_FAILED, EXIT_VERIFY_FAILED

BATCHED = [*TINY, "--set", "batch_size=2", "--deterministic"]  # two samples at a time; one thread per worker


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    data = root / "data"
    for i, wh in enumerate([(40, 32), (36, 32), (32, 36)]):  # a2 and b0 share a size: one batch of 2
        picture(data / f"a{i}.png", wh, seed=i)
    for i in range(2):
        picture(data / "sub" / f"b{i}.PNG", (32, 36), seed=10 + i)  # nested, upper-case extension
    (data / "sub" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (data / "notes.txt").write_text("not an image")
    style = picture(root / "style.png", (32, 32), seed=99)
    return root, data, style


@pytest.fixture(scope="module")
def two_worker_run(dataset):
    root, data, style = dataset
    out = root / "run2"
    r = nst("stylize", data, "--style", style, "--out", out, "--devices", "2", "--shard-size", "2", *BATCHED)
    return out, r


def test_two_workers_corrupt_input_is_one_failed_row(dataset, two_worker_run):
    root, data, _ = dataset
    out, r = two_worker_run
    assert r.returncode == EXIT_SAMPLES_FAILED, r.stderr[-3000:]
    rows = manifest_rows(out)
    assert len(rows) == 6 and sorted(r["index"] for r in rows) == list(range(6))
    failed = [r for r in rows if r["status"] != "ok"]
    assert len(failed) == 1 and failed[0]["status"] == "failed_decode"
    assert failed[0]["source"].endswith("broken.jpg") and "broken.jpg" in failed[0]["error"]
    assert "1 of 6 samples failed" in r.stderr
    # both ranks worked, each sample was done exactly once
    assert {row["worker"]["rank"] for row in rows} == {0, 1}
    samples = tar_samples(out)
    ok_keys = sorted(r["key"] for r in rows if r["status"] == "ok")
    assert sorted(samples) == ok_keys
    for key, members in samples.items():
        assert set(members) == {"png", "json"}
        assert Image.open(io.BytesIO(members["png"])).size[0] > 0
        meta = json.loads(members["json"])
        assert meta["key"] == key and meta["iterations"] > 0 and meta["params"]["size"] == 32
        assert meta["batch"] == (2 if key in ("00000002", "00000003") else 1)
    # plan order: sorted relative paths, recursive, extensions case-insensitive
    from pipeline.run.folder.plan import load_run

    assert [s.rel for s in sorted(load_run(out).iter_samples(), key=lambda s: s.index)] == [
        "a0.png", "a1.png", "a2.png", "sub/b0.PNG", "sub/b1.PNG", "sub/broken.jpg"]
    assert not list((out / "leases").iterdir()) and not list((out / "work").glob("*.journal"))


def test_verify_and_status_on_finished_run(two_worker_run):
    out, _ = two_worker_run
    v = nst("verify", out)
    assert v.returncode == EXIT_OK, v.stderr
    s = nst("status", out, "--json")
    assert s.returncode == 0
    st = json.loads(s.stdout)
    assert (st["planned"], st["ok"], st["failed"], st["pending"]) == (6, 5, 1, 0)
    assert (st["shards_done"], st["shards_total"]) == (3, 3)
    assert "images_per_hour" in st and st["eta_seconds"] == 0.0
    assert st["top_errors"][0]["count"] == 1 and "failed_decode" in st["top_errors"][0]["error"]
    index = json.loads((out / "shardindex.json").read_text())
    assert index["__kind__"] == "wids-shard-index-v1" and index["wids_version"] == 1
    assert sum(e["nsamples"] for e in index["shardlist"]) == 5
    human = nst("status", out)
    assert "6 planned" in human.stdout and "5 ok" in human.stdout


def test_one_worker_gives_byte_identical_images(dataset, two_worker_run):
    root, data, style = dataset
    out2, _ = two_worker_run
    out1 = root / "run1"
    r = nst("stylize", data, "--style", style, "--out", out1, "--devices", "1", "--shard-size", "4", *BATCHED)
    assert r.returncode == EXIT_SAMPLES_FAILED, r.stderr[-3000:]
    one, two = tar_samples(out1), tar_samples(out2)
    assert sorted(one) == sorted(two) and len(one) == 5
    for key in one:
        assert one[key]["png"] == two[key]["png"], f"{key} differs between 1 and 2 workers"


def test_changed_settings_are_refused(dataset, two_worker_run):
    root, data, style = dataset
    out, _ = two_worker_run
    before = (out / "run.json").read_bytes()
    r = nst("stylize", data, "--style", style, "--out", out, "--devices", "1", "--shard-size", "2",
            *BATCHED, "--iterations", "7")
    assert r.returncode == EXIT_RUN_MISMATCH
    assert "iterations: 6 -> 7" in r.stderr and "--overwrite" in r.stderr
    r = nst("stylize", data, "--style", style, "--out", out, "--shard-size", "3", *BATCHED)
    assert r.returncode == EXIT_RUN_MISMATCH and "shard_size: 2 -> 3" in r.stderr
    assert (out / "run.json").read_bytes() == before
    # identical settings on another device count resume (nothing left to do but the failed sample)
    r = nst("stylize", data, "--style", style, "--out", out, "--devices", "1", "--shard-size", "2", *BATCHED)
    assert r.returncode == EXIT_SAMPLES_FAILED and (out / "run.json").read_bytes() == before


def test_verify_names_a_tampered_shard(two_worker_run, tmp_path):
    out, _ = two_worker_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    tar = sorted((copy / "shards").glob("*.tar"))[1]
    data = bytearray(tar.read_bytes())
    data[600] ^= 0xFF  # inside the first member's data: the tar still opens
    tar.write_bytes(bytes(data))
    (copy / "commits" / "stylized-000002.json").unlink()
    shutil.copy(tar, copy / "shards" / "stylized-000099.tar")
    r = nst("verify", copy)
    assert r.returncode == EXIT_VERIFY_FAILED
    assert f"{tar.stem}: {tar.name} sha256" in r.stderr
    assert "stylized-000002: no commit record" in r.stderr
    assert "shards/stylized-000099.tar is not part of this run's plan" in r.stderr


def test_retry_failed_reprocesses_only_the_failed_sample(tmp_path):
    data = tmp_path / "data"
    for i in range(2):
        picture(data / f"c{i}.png", seed=i)
    broken = data / "c2.png"
    broken.write_bytes(b"\x89PNG truncated")
    style = picture(tmp_path / "s.png", seed=5)
    out = tmp_path / "run"
    r = nst("stylize", data, "--style", style, "--out", out, *TINY)
    assert r.returncode == EXIT_SAMPLES_FAILED
    before = {row["key"]: row for row in manifest_rows(out)}
    assert before["00000002"]["status"] == "failed_decode"
    picture(broken, seed=2)  # the user repairs the file
    r = nst("stylize", data, "--style", style, "--out", out, *TINY)
    assert r.returncode == EXIT_RUN_MISMATCH and "--retry-failed" in r.stderr
    r = nst("stylize", data, "--style", style, "--out", out, "--retry-failed", *TINY)
    assert r.returncode == EXIT_OK, r.stderr[-3000:]
    after = {row["key"]: row for row in manifest_rows(out)}
    assert after["00000002"]["status"] == "ok" and after["00000002"]["attempt"] == 2
    for key in ("00000000", "00000001"):
        assert after[key] == before[key]  # untouched
    assert sorted(tar_samples(out)) == ["00000000", "00000001", "00000002"]
    assert nst("verify", out).returncode == EXIT_OK
    assert json.loads((out / "run.json").read_text())["input_changes"][0]["paths"] == ["c2.png"]  # relative


def test_readme_webdataset_snippet_runs(two_worker_run):
    """The README's reading snippet, run as written against a finished run."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    out, _ = two_worker_run
    doc = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    snippets = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if 'OUT = "runs/stylize"' in b]
    assert len(snippets) == 1
    snippet = snippets[0]
    code = snippet.replace('OUT = "runs/stylize"', f"OUT = {str(out)!r}")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 5 and lines[0].startswith("00000000 (")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_shardindex_opens_with_wids(two_worker_run):
    import wids
    out, _ = two_worker_run
    ds = wids.ShardListDataset(str(out / "shardindex.json"), cache_dir=str(out.parent / "wids-cache"))
    assert len(ds) == 5
    assert ds[0]["__key__"] == "00000000" and ds[4]["__key__"] == "00000004"


def test_overwrite_with_two_workers_starts_over_once(tmp_path):
    """Lightning's second rank re-runs the command line; it must not discard rank 0's fresh run."""
    data, style, out = pictures_and_style(tmp_path, 4, "o", style_seed=3)
    assert nst("stylize", data, "--style", style, "--out", out, "--shard-size", "2", *TINY,
               "--iterations", "2").returncode == EXIT_OK
    r = nst("stylize", data, "--style", style, "--out", out, "--shard-size", "2", "--devices", "2",
            "--overwrite", *TINY)
    assert r.returncode == EXIT_OK, r.stderr[-3000:]
    rows = manifest_rows(out)
    assert sorted(r["index"] for r in rows) == [0, 1, 2, 3] and {r["iterations"] for r in rows} == {6}
    assert json.loads((out / "run.json").read_text())["config"]["iterations"] == 6
    assert nst("verify", out).returncode == EXIT_OK


def test_retry_with_two_workers_retries_each_failure_once(dataset, two_worker_run, tmp_path):
    root, data, style = dataset
    out, _ = two_worker_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = {r["key"]: r for r in manifest_rows(copy)}
    r = nst("stylize", data, "--style", style, "--out", copy, "--devices", "2", "--shard-size", "2",
            "--retry-failed", *BATCHED)
    assert r.returncode == EXIT_SAMPLES_FAILED, r.stderr[-3000:]  # the file is still broken
    after = {r["key"]: r for r in manifest_rows(copy)}
    assert after["00000005"]["status"] == "failed_decode" and after["00000005"]["attempt"] == 2
    assert {k: v for k, v in after.items() if k != "00000005"} == {k: v for k, v in before.items() if k != "00000005"}
    assert nst("verify", copy).returncode == EXIT_OK


def test_interleaved_sizes_still_fill_batches(tmp_path):
    """A shard alternating two working sizes: the runner batches by (size, styles) key, so every
    optimisation gets three images instead of fixed-position batches split by size."""
    data = tmp_path / "data"
    for i in range(6):
        picture(data / f"p{i}.png", (40, 32) if i % 2 == 0 else (32, 40), seed=i)
    style = picture(tmp_path / "style.png", (32, 32), seed=99)
    out = tmp_path / "run"
    r = nst("stylize", data, "--style", style, "--out", out, "--shard-size", "6", *TINY, "--set", "batch_size=3")
    assert r.returncode == EXIT_OK, r.stderr[-3000:]
    rows = manifest_rows(out)
    assert sorted(row["key"] for row in rows) == [f"{i:08d}" for i in range(6)]
    assert {row["status"] for row in rows} == {"ok"}
    sizes = [tuple(json.loads(members["json"])["size"]) for _, members in sorted(tar_samples(out).items())]
    assert sizes == [(32, 26), (26, 32)] * 3
    assert [row["batch"] for row in rows] == [3] * 6
    assert nst("verify", out).returncode == EXIT_OK


def test_shards_group_same_size_images(tmp_path):
    """--shard-order size (the default): the plan puts images of one working size into the same
    shards, so shards of an interleaved dataset fill their batches; keys stay input order.
    --shard-order input keeps consecutive shards, whose batches split by size."""
    data = tmp_path / "data"
    for i in range(6):
        picture(data / f"p{i}.png", (40, 32) if i % 2 == 0 else (32, 40), seed=i)
    style = picture(tmp_path / "style.png", (32, 32), seed=99)
    args = ["--style", style, "--shard-size", "3", *TINY, "--set", "batch_size=3"]
    grouped = tmp_path / "grouped"
    r = nst("stylize", data, "--out", grouped, *args)
    assert r.returncode == EXIT_OK, r.stderr[-3000:]
    from pipeline.run.folder.plan import load_run

    def shard_indices(out):
        plan = load_run(out)
        return [[s.index for s in plan.shard_samples(shard)] for shard in plan.shards]

    plan = json.loads((grouped / "run.json").read_text())
    assert shard_indices(grouped) == [[0, 2, 4], [1, 3, 5]]
    rows = manifest_rows(grouped)
    assert sorted(row["key"] for row in rows) == [f"{i:08d}" for i in range(6)]
    assert [row["batch"] for row in rows] == [3] * 6
    by_key = {k: tuple(json.loads(m["json"])["size"]) for k, m in tar_samples(grouped).items()}
    assert by_key == {f"{i:08d}": (32, 26) if i % 2 == 0 else (26, 32) for i in range(6)}
    assert nst("verify", grouped).returncode == EXIT_OK
    # the plan is fixed when the run is created: the other order on resume changes nothing
    r = nst("stylize", data, "--out", grouped, *args, "--shard-order", "input")
    assert r.returncode == EXIT_OK, r.stderr[-3000:]
    assert json.loads((grouped / "run.json").read_text())["shards"] == plan["shards"]
    assert manifest_rows(grouped) == rows

    consecutive = tmp_path / "consecutive"
    r = nst("stylize", data, "--out", consecutive, *args, "--shard-order", "input")
    assert r.returncode == EXIT_OK, r.stderr[-3000:]
    assert shard_indices(consecutive) == [[0, 1, 2], [3, 4, 5]]
    assert sorted(row["batch"] for row in manifest_rows(consecutive)) == [1, 1, 2, 2, 2, 2]

    r = nst("stylize", data, "--out", tmp_path / "bad", *args, "--shard-order", "random")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "nst: error: --shard-order must be size or input, got 'random'"]
