"""End to end: `nst texture|invert|dream|visualize` through the real runner on tiny inputs.

Each run is killed with SIGKILL after its first durable sample, resumed with
the same command, and must end with `nst verify` passing and every planned
sample exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from dataset_util import ENV, NST, manifest_rows, nst, picture, tar_samples

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--no-progress", "--device", "cpu"]


def durable_samples(out: Path) -> int:
    n = len(list((out / "commits").glob("*.json"))) if (out / "commits").exists() else 0
    for j in (out / "work").glob("*.journal") if (out / "work").exists() else []:
        n += len([line for line in j.read_text().splitlines() if line.strip()])
    return n


def run_killed_then_resumed(args: list, out: Path, planned: int) -> None:
    """Start the command, SIGKILL it after its first durable sample, rerun it, verify."""
    proc = subprocess.Popen([NST, *map(str, args)], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    while durable_samples(out) == 0 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "summary.json").exists()  # it really was cut short
    resumed = nst(*args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    check = nst("verify", out)
    assert check.returncode == 0, check.stderr
    rows = manifest_rows(out)
    assert len(rows) == planned and len({r["key"] for r in rows}) == planned
    assert all(r["status"] == "ok" for r in rows)
    assert len(tar_samples(out)) == planned


@pytest.fixture
def photos(tmp_path):
    data = tmp_path / "data"
    for i in range(3):
        picture(data / f"img{i}.png", (40, 32), seed=i)
    return data


def test_texture_count_seeds_kill_and_resume(tmp_path):
    out = tmp_path / "tex"
    source = ROOT / "examples" / "style" / "starry_night.jpg"
    args = ["texture", "--style", source, "--count", 4, "--out", out, "--size", 32, "--iterations", 40,
            "--shard-size", 2, "--set", "width=40", *FAST]
    run_killed_then_resumed(args, out, planned=4)
    samples = tar_samples(out)
    images = [Image.open(__import__("io").BytesIO(s["png"])) for s in samples.values()]
    assert all(im.size == (40, 32) for im in images)
    pixels = [im.tobytes() for im in images]
    assert len(set(pixels)) == 4  # every copy has its own seed
    copies = sorted(json.loads(s["json"])["copy"] for s in samples.values())
    assert copies == [0, 1, 2, 3]
    # identical settings resume as complete; different ones are refused
    again = nst(*args)
    assert again.returncode == 0
    refused = nst(*[a if a != 40 else 41 for a in args])
    assert refused.returncode == 5 and "error" in refused.stderr


def test_invert_members_kill_and_resume(tmp_path, photos):
    out = tmp_path / "inv"
    args = ["invert", photos, "--out", out, "--size", 32, "--iterations", 15, "--shard-size", 1,
            "--set", "invert_layers=block1_conv2,block3_conv3", *FAST]
    run_killed_then_resumed(args, out, planned=3)
    for key, members in tar_samples(out).items():
        assert set(members) == {"block1_conv2.png", "block3_conv3.png", "sheet.png", "json"}
        record = json.loads(members["json"])
        assert set(record["psnr"]) == {"block1_conv2", "block3_conv3"}
        sheet = Image.open(__import__("io").BytesIO(members["sheet.png"]))
        assert sheet.width == 3 * record["size"][0]


def test_dream_frames_kill_and_resume(tmp_path, photos):
    out = tmp_path / "dream"
    args = ["dream", photos, "--out", out, "--size", 40, "--iterations", 6, "--octaves", 2,
            "--octave-scale", 1.5, "--zoom-frames", 2, "--shard-size", 1, *FAST]
    run_killed_then_resumed(args, out, planned=3)
    for members in tar_samples(out).values():
        assert {"png", "frame0000.png", "frame0001.png", "frame0002.png", "gif", "json"} == set(members)
        assert members["png"] == members["frame0000.png"]
        gif = Image.open(__import__("io").BytesIO(members["gif"]))
        assert gif.n_frames == 3


def test_bad_input_is_one_line_with_its_status(tmp_path, photos):
    r = nst("dream", photos, "--out", tmp_path / "x", "--octave-scale", 0.5, *FAST)
    assert r.returncode == 2 and "octave_scale" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = nst("texture", "--style", tmp_path / "missing.jpg", "--out", tmp_path / "y", *FAST)
    assert r.returncode == 2 and "missing.jpg" in r.stderr


def test_visualize_one_and_two_workers_agree_and_redraw(tmp_path):
    data = tmp_path / "data"
    for i in range(5):
        picture(data / f"p{i}.png", (48, 40), seed=10 + i)
    (data / "p9_broken.png").write_bytes(b"not an image")  # one failed row; the rest still reduce
    layers = "vis_layers=block1_conv1,block2_conv2,block3_conv1"
    common = ["--size", 40, "--shard-size", 2, "--set", layers, "--set", "grid_filters=3", "--set", "cell=24",
              *FAST]
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = nst("visualize", data, "--out", one, "--devices", 1, *common)
    assert r1.returncode == 3, r1.stderr[-2000:]  # samples failed: the broken file
    r2 = nst("visualize", data, "--out", two, "--devices", 2, *common)
    assert r2.returncode == 3, r2.stderr[-2000:]
    for out in (one, two):
        assert nst("verify", out).returncode == 0
        rows = {r["source"].rsplit("/", 1)[-1]: r["status"] for r in manifest_rows(out)}
        assert rows.pop("p9_broken.png") == "failed_decode" and set(rows.values()) == {"ok"}
    t1 = json.loads((one / "visualize" / "topk.json").read_text())
    t2 = json.loads((two / "visualize" / "topk.json").read_text())
    assert t1["layers"] == t2["layers"] and t1["samples"] == t2["samples"]
    assert len(t1["samples"]) == 5
    assert len(t1["layers"]["block2_conv2"]["value"]) == 128
    index = json.loads((one / "visualize" / "block2_conv2.json").read_text())
    assert index["filters_drawn"] == 3 and len(index["entries"]) == 3 * 5
    first = index["entries"][0]
    assert first["rank"] == 1 and first["key"] == t1["samples"][str(first["index"])]["key"]
    grid = Image.open(one / "visualize" / "block2_conv2.png")
    # redraw with more filters: no new pass over the data (manifests unchanged), taller grid
    manifests = sorted(p.read_bytes() for p in (one / "manifests").glob("*.jsonl"))
    r3 = nst("visualize", data, "--out", one, *[a if a != "grid_filters=3" else "grid_filters=6" for a in common])
    assert r3.returncode == 3, r3.stderr[-2000:]
    assert sorted(p.read_bytes() for p in (one / "manifests").glob("*.jsonl")) == manifests
    assert Image.open(one / "visualize" / "block2_conv2.png").height > grid.height
