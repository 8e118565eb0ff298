"""Helpers for the dataset-pipeline tests: tiny images and running the real `nst` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

NST = str(Path(sys.executable).with_name("nst"))
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
TINY = ["--size", "32", "--iterations", "6", "--no-progress", "--device", "cpu"]


def picture(path: Path, size=(40, 32), seed=0) -> Path:
    """A small structured RGB picture (gradient + random blocks), deterministic per seed."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([xx / w * 255, yy / h * 255, np.full_like(xx, 60.0 + 30 * seed)], -1)
    for _ in range(3):
        x0, y0 = rng.integers(0, w - 8), rng.integers(0, h - 8)
        arr[y0:y0 + 8, x0:x0 + 8] = rng.integers(0, 255, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8), "RGB").save(path)
    return path


def pictures_and_style(tmp_path: Path, n: int, prefix: str, style_seed: int) -> tuple[Path, Path, Path]:
    """tmp_path/data with n pictures (seeds 0..n-1), a style picture, and the run directory to use."""
    data = tmp_path / "data"
    for i in range(n):
        picture(data / f"{prefix}{i}.png", seed=i)
    return data, picture(tmp_path / "s.png", seed=style_seed), tmp_path / "run"


def nst(*args, timeout=300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([NST, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout, **kw)


def manifest_rows(out: Path) -> list[dict]:
    rows = []
    for m in sorted((out / "manifests").glob("*.jsonl")):
        rows += [json.loads(line) for line in m.read_text().splitlines() if line.strip()]
    return rows


def tar_samples(out: Path) -> dict[str, dict[str, bytes]]:
    """key -> {ext: bytes} over all shards; asserts no key appears twice."""
    import tarfile

    found: dict[str, dict[str, bytes]] = {}
    for t in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(t) as tf:
            seen_here = set()
            for m in tf:
                key, ext = m.name.split(".", 1)
                if key not in seen_here:
                    assert key not in found, f"key {key} in two shards"
                    seen_here.add(key)
                    found[key] = {}
                assert ext not in found[key], f"{m.name} twice"
                found[key][ext] = tf.extractfile(m).read()
    return found


class FileTask:
    """The planning half of the runner tests' re-encode tasks: one sample per input file,
    no network (mixed into a pipeline.run.task.Task subclass)."""

    name = "reencode"
    shard_prefix = "png"

    def identity(self):
        return {"method": "reencode", "seed": 1}

    def weights_digest(self):
        return "none"

    def plan(self):
        from pipeline.run.task import Planned

        return [Planned(str(f)) for f in self.files]


def write_tar(path: Path, members) -> Path:
    """A tar of (name, bytes) members in order, as webdataset writers make them."""
    import io
    import tarfile

    with tarfile.open(path, "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path
