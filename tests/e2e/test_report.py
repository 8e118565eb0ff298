"""`nst report` on real runs: counts, failures, failed.txt, a seeded stable sample, thumbnails
read from only the sampled shards' tars and written once, a live run, and the other methods."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from dataset_util import TINY, nst, picture, tar_samples


def make_stylize_run(base: Path) -> Path:
    """5 tiny contents + one corrupt file, 3 shards of 2: a real run with one failed_decode."""
    data = base / "data"
    for i in range(5):
        picture(data / f"c{i}.png", (40, 32), seed=i)
    (data / "zz_broken.png").write_bytes(b"this is not an image")
    style = picture(base / "style.png", (32, 32), seed=9)
    out = base / "run"
    r = nst("stylize", data, "--style", style, "--out", out, "--shard-size", 2, *TINY)
    assert r.returncode == 3, r.stderr[-2000:]  # finished, one sample failed
    return out


@pytest.fixture(scope="module")
def stylize_run(tmp_path_factory) -> Path:
    return make_stylize_run(tmp_path_factory.mktemp("report"))


def report(run: Path, *args) -> tuple[Path, dict]:
    r = nst("report", run, *args)
    assert r.returncode == 0, r.stderr[-2000:]
    index = Path(r.stdout.strip().splitlines()[-1])
    return index, json.loads((index.parent / "report.json").read_text())


def test_report_counts_failures_and_full_outputs(stylize_run, tmp_path):
    out = tmp_path / "rep"
    index, data = report(stylize_run, "--out", out, "--samples", 3)
    assert index == out / "index.html"
    f = data["figures"]
    assert (f["planned"], f["ok"], f["failed"], f["pending"], f["complete"]) == (6, 5, 1, 0, True)
    assert f["images_per_hour_overall"] > 0 and list(f["seconds_per_image"]) == [f"{os.uname().nodename}/cpu"]
    assert data["failures"] == {"failed_decode": ["00000005"]}
    assert (out / "failed.txt").read_text() == f"{stylize_run.parent / 'data' / 'zz_broken.png'}\n"
    page = index.read_text()
    assert "failed_decode" in page and "zz_broken.png" in page and "nst stylize" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from anywhere
    # each sampled output links to its full image, byte-identical to the tar member
    members = tar_samples(stylize_run)
    assert len(data["sampled"]) == 3
    for key in data["sampled"]:
        full = list((out / "full").glob(f"{key}-*.png"))
        assert len(full) == 1 and full[0].read_bytes() == members[key]["png"]
        assert f'href="full/{full[0].name}"' in page
    assert (out / "plots" / "loss.svg").exists() and (out / "plots" / "seconds.svg").exists()


def test_sample_is_seeded_and_only_sampled_tars_are_read(stylize_run, tmp_path):
    out = tmp_path / "rep"
    _, first = report(stylize_run, "--out", out, "--samples", 1, "--seed", 3)
    shard_of = {r["key"]: r["shard"] for m in (stylize_run / "manifests").glob("*.jsonl")
                for r in map(json.loads, m.read_text().splitlines())}
    assert first["tars_opened"] == [f"{shard_of[first['sampled'][0]]}.tar"]  # 1 of 3 tars
    thumbs = {p.name: p.stat().st_mtime_ns for p in (out / "thumbs").iterdir()}
    # the same seed: the same sample, and nothing is read or written again
    _, again = report(stylize_run, "--out", out, "--samples", 1, "--seed", 3)
    assert again["sampled"] == first["sampled"] and again["tars_opened"] == []
    assert {p.name: p.stat().st_mtime_ns for p in (out / "thumbs").iterdir()} == thumbs
    # other seeds choose other samples; never the failed one
    picks = {report(stylize_run, "--out", tmp_path / f"s{s}", "--samples", 2, "--seed", s)[1]["sampled"][0]
             for s in range(4)}
    assert len(picks) > 1 and "00000005" not in picks


def test_live_run_reads_only_committed_shards(stylize_run, tmp_path):
    live = tmp_path / "live"
    shutil.copytree(stylize_run, live)
    (live / "commits" / "stylized-000001.json").unlink()  # renamed into shards/, record not yet written
    (live / "shardindex.json").unlink()
    out = tmp_path / "rep"
    index, data = report(live, "--out", out, "--samples", 10)
    f = data["figures"]
    assert (f["ok"], f["pending"], f["complete"], f["shards_committed"]) == (3, 2, False, 2)
    assert sorted(data["sampled"]) == ["00000000", "00000001", "00000004"]
    assert "stylized-000001.tar" not in data["tars_opened"]
    assert f["eta_seconds"] is not None and "ETA" in index.read_text()


@pytest.mark.parametrize("method,args,member", [
    ("texture", ["--count", 2, "--size", 32, "--iterations", 6], "png"),
    ("invert", ["--size", 32, "--iterations", 4, "--set", "invert_layers=block2_conv2"], "sheet.png"),
    ("dream", ["--size", 32, "--iterations", 3, "--octaves", 1], "png"),
])
def test_report_of_other_methods(tmp_path, method, args, member):
    src = picture(tmp_path / "data" / "a.png", (40, 32), seed=1)
    data = ["--style", src] if method == "texture" else [src.parent]
    run = tmp_path / "run"
    r = nst(method, *data, "--out", run, *args, "--no-progress", "--device", "cpu")
    assert r.returncode == 0, r.stderr[-2000:]
    index, rep = report(run)
    assert rep["figures"]["ok"] == len(rep["sampled"]) >= 1
    ext = member.rsplit(".", 1)[-1]
    for key in rep["sampled"]:
        full = list((index.parent / "full").glob(f"{key}-*.{ext}"))
        assert len(full) == 1 and full[0].read_bytes() == tar_samples(run)[key][member]
    assert index.read_text().count('class="card"') == len(rep["sampled"])


def test_report_bad_input(tmp_path):
    r = nst("report", tmp_path / "nothing")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "run.json not found" in r.stderr


def test_report_of_visualize_shows_the_layer_grids(tmp_path):
    data = tmp_path / "data"
    for i in range(2):
        picture(data / f"p{i}.png", (40, 32), seed=20 + i)
    run = tmp_path / "run"
    r = nst("visualize", data, "--out", run, "--size", 32, "--set", "vis_layers=block1_conv1",
            "--set", "grid_filters=2", "--set", "cell=24", "--no-progress", "--device", "cpu")
    assert r.returncode == 0, r.stderr[-2000:]
    index, rep = report(run)
    page = index.read_text()
    assert rep["figures"]["ok"] == 2 and "Layer grids" in page and "no image output" in page
    full = index.parent / "full" / "grid-block1_conv1.png"
    assert full.read_bytes() == (run / "visualize" / "block1_conv1.png").read_bytes()
    assert f'href="full/{full.name}"' in page
