"""`nst one` as a user runs it: a real process, real files, clear errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pipeline.io.images import decode_image, load_image
from tests.conftest import make_image


def nst(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_one_writes_image_and_effective_config(images, tmp_path):
    content, style = images
    out = tmp_path / "out" / "result.png"
    r = nst("one", content, style, "-o", out, "--size", 32, "--iterations", 6,
            "--set", "init=content", "--set", "content_layer=relu3_2", "--save-every", 3)
    assert r.returncode == 0, r.stderr
    img = Image.open(out)
    assert img.size == (32, 27) and img.mode == "RGB"  # 48x40 scaled to longest side 32
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["config"]["content_layer"] == "block3_conv2"
    assert record["config"]["iterations"] == 6 and record["evaluations"] == 6
    assert set(record["losses"]) == {"content", "style", "tv", "total"}
    assert (tmp_path / "out" / "result.00003.png").exists()
    assert "eval" in r.stderr  # the progress bar


def test_never_upscales_unless_asked(images, tmp_path):
    content, style = images
    out = tmp_path / "big.png"
    r = nst("one", content, style, "-o", out, "--size", 96, "--iterations", 1)
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (48, 40)


@pytest.mark.parametrize("case,args,message", [
    ("missing", ["{missing}", "{style}"], "image not found"),
    ("corrupt", ["{corrupt}", "{style}"], "cannot decode image"),
    ("text", ["{content}", "{text}"], "cannot decode image"),
    ("layer", ["{content}", "{style}", "--set", "content_layer=block9_conv1"], "unknown layer name 'block9_conv1'"),
    ("weights", ["{content}", "{style}", "--set", "style_weights=[1,2]"], "style_weights has 2 values"),
    ("size0", ["{content}", "{style}", "--size", "0"], "size must be a positive integer, got 0"),
    ("negsize", ["{content}", "{style}", "--size", "-5"], "size must be a positive integer, got -5"),
    ("nostyle", ["{content}"], "need a content image and at least one style image"),
    ("config", ["{content}", "{style}", "--config", "nope"], "config not found: 'nope'"),
])
def test_bad_input_one_line_exit_2_nothing_written(images, tmp_path, case, args, message):
    content, style = images
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    text = tmp_path / "notes.png"
    text.write_text("hello")
    paths = {"missing": tmp_path / "nope.jpg", "style": style, "content": content, "corrupt": corrupt, "text": text}
    out = tmp_path / "o" / "out.png"
    r = nst("one", *[a.format(**paths) for a in args], "-o", out, "--iterations", 1)
    assert r.returncode == 2, r.stderr
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def _rgb(img):
    return np.asarray(img.convert("RGB"))


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "I;16", "LA"])
def test_image_modes_become_rgb(tmp_path, mode):
    base = make_image((20, 16), 0)
    if mode == "I;16":
        arr = (np.asarray(base.convert("L"), dtype=np.uint16) * 257)
        img = Image.fromarray(arr).convert("I;16") if arr.dtype != np.uint16 else Image.fromarray(arr)
        path = tmp_path / "x.png"
    else:
        img = base.convert(mode)
        path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    img.save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (20, 16)
    if mode == "I;16":
        np.testing.assert_allclose(np.asarray(out)[..., 0], np.asarray(base.convert("L")), atol=1)


def test_alpha_is_composited_on_white(tmp_path):
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    path = tmp_path / "a.png"
    img.save(path)
    assert tuple(np.asarray(load_image(path))[0, 0]) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    img = make_image((30, 20), 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif.tobytes())
    assert load_image(path).size == (20, 30)
