"""A dataset run over images larger than the memory cap: they are evaluated in tiles, at their own
size, and say so (`tiles`), instead of being shrunk (`oom_resized_from`) or failing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import pytest

from pipeline.engine.tile_plan import tiled_bytes
from tests.conftest import make_image

pytestmark = pytest.mark.slow

NST = [sys.executable, "-m", "pipeline.cli"]
LAYERS = ["block4_conv2", "block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]


def test_images_over_max_memory_are_tiled_and_recorded(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    make_image((256, 256), 1).save(data / "big.png")    # needs ~320 MB whole (fp32), more than the cap
    make_image((64, 48), 2).save(data / "small.png")    # fits whole
    style = tmp_path / "style.png"
    make_image((96, 80), 3, "style").save(style)
    cap = tiled_bytes("vgg16", LAYERS, (256, 256), 64, "fp32", 20) + (4 << 20)  # 64 px tiles fit, whole does not
    out = tmp_path / "run"
    r = subprocess.run([*NST, "stylize", str(data), "--style", str(style), "--out", str(out), "--size", "256",
                        "--iterations", "3", "--max-memory", str(cap), "--set", "precision=fp32", "--device", "cpu", "--threads", "1",
                        "--no-progress"], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    records = {}
    for tar in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(tar) as tf:
            for m in tf.getmembers():
                if m.name.endswith(".json"):
                    rec = json.load(tf.extractfile(m))
                    records[rec["source"]] = rec
    assert set(records) == {"big.png", "small.png"}
    big, small = records["big.png"], records["small.png"]
    assert big["size"] == [256, 256] and "oom_resized_from" not in big
    assert big["tiles"]["tile"] == 64 and big["tiles"]["count"] == 16 and big["tiles"]["halo"] == 64
    assert "tiles" not in small and small["size"] == [64, 48]
    rows = [json.loads(line) for f in (out / "manifests").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert sorted(row["status"] for row in rows) == ["ok", "ok"]
