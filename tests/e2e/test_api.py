"""The Python API as a notebook uses it, and the README's example run as written (smaller sizes)."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import pipeline as nst
from pipeline.errors import BadInput
from tests.conftest import ROOT, make_image


TINY = {"size": 32, "iterations": 3, "progress": False, "device": "cpu"}


def readme_example() -> str:
    """The first python block of the README's "Python API" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs(tmp_path):
    code, n = re.subn(r"size=\d+, iterations=\d+", "size=32, iterations=2", readme_example())
    assert n == 2, "the README example's sizes changed: update this test's substitution"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert Image.open(tmp_path / "wave.png").size == (32, 32)
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "3 of 3 samples, exit status 0"
    assert [line.split()[0] for line in lines[1:]] == ["00000000", "00000001", "00000002"]
    assert lines[1].endswith("astronaut.jpg (32, 32)")


def test_paths_and_pil_images_give_the_same_result(tmp_path):
    content, style = make_image((48, 40), 0), make_image((40, 40), 1, "style")
    content.save(tmp_path / "c.png")
    style.save(tmp_path / "s.png")
    from_paths = nst.stylize(tmp_path / "c.png", str(tmp_path / "s.png"), threads=1, **TINY)
    from_images = nst.stylize(content.convert("RGBA"), [style], threads=1, **TINY)  # any PIL mode
    assert from_paths.size == (32, 27) and from_paths.mode == "RGB"
    assert np.array_equal(np.asarray(from_images), np.asarray(from_paths))


def test_sister_methods(tmp_path):
    source = make_image((40, 40), 1, "style")
    assert nst.texture(source, width=40, height=24, **TINY).size == (40, 24)
    layers = nst.invert(make_image((48, 40), 0), invert_layers="relu1_2,block3_conv3", **TINY)
    assert list(layers) == ["block1_conv2", "block3_conv3"] and layers["block1_conv2"].size == (32, 27)
    frames = nst.dream(make_image((48, 40), 0), octaves=2, zoom_frames=1, **TINY)
    assert len(frames) == 2 and frames[1].size == (32, 27)


def test_settings_are_validated_like_the_cli(tmp_path):
    img = make_image((48, 40), 0)
    with pytest.raises(BadInput, match=r"^content_weight must be a finite number >= 0, got nan$"):
        nst.stylize(img, img, content_weight=float("nan"), **TINY)
    with pytest.raises(BadInput, match=r"unknown config key 'iteration' \(did you mean 'iterations'\?\)"):
        nst.texture(img, iteration=3)
    with pytest.raises(BadInput, match=r"unknown config key 'devics' \(did you mean 'devices'\?\)"):
        nst.run_dataset(tmp_path, img, tmp_path / "run", devics=2)
    with pytest.raises(BadInput, match="content must be a path or a PIL image, got int"):
        nst.stylize(3, img, **TINY)


def test_run_dataset_and_open_run_with_failures(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        make_image((40, 32), i).save(data / f"{i}.png")
    (data / "3.png").write_bytes(b"\x89PNG truncated")
    make_image((32, 32), 1, "style").save(tmp_path / "style.png")
    summary = nst.run_dataset(data, [tmp_path / "style.png"], tmp_path / "run", shard_size=2, **TINY)
    assert (summary["planned"], summary["ok"], summary["failed"], summary["exit_status"]) == (4, 3, 1, 3)
    samples = list(nst.open_run(tmp_path / "run"))
    assert [meta["key"] for _, meta in samples] == ["00000000", "00000001", "00000002"]
    assert all(image.size == (32, 26) for image, _ in samples)
    assert samples[1][1]["source"].endswith("1.png") and "losses" in samples[1][1]
    # style paths are published relative to the style root, recorded once in run.json
    assert samples[1][1]["styles"] == ["style.png"]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["style_root"] == str(tmp_path)
    with_failed = list(nst.open_run(tmp_path / "run", include_failed=True))
    assert len(with_failed) == 4 and with_failed[3][0] is None
    assert with_failed[3][1]["status"] == "failed_decode" and "3.png" in with_failed[3][1]["error"]
    # the run folder's views, as the commands show them
    assert nst.status(tmp_path / "run")["failed"] == 1 and nst.verify(tmp_path / "run") == []
    index = nst.report(tmp_path / "run")
    assert index == tmp_path / "run" / "report" / "index.html" and "failed_decode" in index.read_text()
    written, skipped = nst.export(tmp_path / "run", tmp_path / "tree", progress=False)
    assert (written, skipped) == (3, 0) and sorted(p.name for p in (tmp_path / "tree").rglob("*.png")) == [
        "0.png", "1.png", "2.png"]
