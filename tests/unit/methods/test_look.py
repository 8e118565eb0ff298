"""The ruler of the look (nst look): its two anchors, SSIM against values derived by hand, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.io.images import load_image
from pipeline.methods.look import LookRuler, luminance, ssim, to_view, view_size

ROOT = Path(__file__).resolve().parents[3]
CONTENT = ROOT / "examples" / "content" / "astronaut.jpg"
STYLE = ROOT / "examples" / "style" / "great_wave_of_kanagawa.jpg"
NST = str(Path(sys.executable).with_name("nst"))


@pytest.fixture(scope="module")
def ruler():
    torch.set_num_threads(1)
    return LookRuler()


@pytest.fixture(scope="module")
def pair():
    # small inputs: the ruler brings every image to its 256 px viewing size anyway
    c, s = load_image(CONTENT), load_image(STYLE)
    return c.resize((96, 96), Image.Resampling.LANCZOS), s.resize((120, 80), Image.Resampling.LANCZOS)


def test_content_as_output_scores_structure_1_and_style_match_0(ruler, pair):
    content, style = pair
    look = ruler.score_one(content, style, content)
    assert look.structure == pytest.approx(1.0, abs=1e-9)
    assert look.style_match == pytest.approx(0.0, abs=1e-9)


def test_style_as_output_scores_style_match_1_and_low_structure(ruler, pair):
    content, style = pair
    look = ruler.score_one(content, style, style)
    assert look.style_match == pytest.approx(1.0, abs=1e-9)
    assert look.structure < 0.5  # an unrelated painting keeps little of the layout


def test_a_blend_lies_between_the_anchors(ruler, pair):
    content, style = pair
    blend = Image.blend(content, style.resize(content.size, Image.Resampling.LANCZOS), 0.5)
    look = ruler.score_one(content, style, blend)
    assert 0.0 < look.style_match < 1.0 and 0.0 < look.structure < 1.0


def test_ssim_of_two_constant_images_is_the_luminance_term():
    # constant grey levels a and b: both variances and the covariance vanish, so
    # SSIM = (2ab + C1) / (a^2 + b^2 + C1) with C1 = (0.01 * 255)^2 = 6.5025
    a, b = 100.0, 150.0
    x, y = torch.full((1, 1, 20, 30), a), torch.full((1, 1, 20, 30), b)
    expected = (2 * a * b + 6.5025) / (a * a + b * b + 6.5025)  # 0.923090...
    assert float(ssim(x, y)[0]) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.92309, abs=1e-5)


def _ssim_by_windows(x: np.ndarray, y: np.ndarray, k: int = 7) -> float:
    """Every 7x7 window in full, with numpy's own variance and covariance (n-1)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for i in range(x.shape[0] - k + 1):
        for j in range(x.shape[1] - k + 1):
            a, b = x[i:i + k, j:j + k].ravel(), y[i:i + k, j:j + k].ravel()
            ma, mb = a.mean(), b.mean()
            cov = np.cov(a, b, ddof=1)
            vals.append(((2 * ma * mb + c1) * (2 * cov[0, 1] + c2))
                        / ((ma * ma + mb * mb + c1) * (cov[0, 0] + cov[1, 1] + c2)))
    return float(np.mean(vals))


def test_ssim_matches_a_window_by_window_computation():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, (16, 19))
    y = np.clip(x * 0.6 + rng.normal(0, 30, x.shape) + 40, 0, 255)
    got = float(ssim(torch.from_numpy(x)[None, None], torch.from_numpy(y)[None, None])[0])
    assert got == pytest.approx(_ssim_by_windows(x, y), rel=1e-9)


def test_viewing_size_and_luminance():
    assert view_size((512, 384)) == (256, 192)
    assert view_size((64, 128)) == (128, 256)  # small images are enlarged to the viewing size
    grey = Image.new("RGB", (10, 5), (90, 90, 90))
    t = to_view(grey, (20, 10))
    assert t.shape == (1, 3, 10, 20)
    assert torch.allclose(luminance(t), torch.full((1, 1, 10, 20), 90.0), atol=1e-3)


def _nst(*args):
    return subprocess.run([NST, "look", *map(str, args)], capture_output=True, text=True, timeout=300)


def test_cli_prints_one_json_object_per_output(tmp_path, pair):
    content, style = pair
    c, s = tmp_path / "c.png", tmp_path / "s.png"
    content.save(c)
    style.save(s)
    r = _nst(c, s, c, s, "--json", "--threads", "1")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["output"] for row in rows] == [str(c), str(s)]
    assert rows[0]["structure"] == pytest.approx(1.0) and rows[0]["style_match"] == pytest.approx(0.0)
    assert rows[1]["style_match"] == pytest.approx(1.0)
    assert set(rows[0]) == {"output", "structure", "style_match"}


@pytest.mark.parametrize("case", ["missing", "too_few", "not_an_image"])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, case):
    bogus = tmp_path / "bogus.png"
    if case == "missing":
        args = [CONTENT, STYLE, tmp_path / "nope.png"]
    elif case == "too_few":
        args = [CONTENT, STYLE]
    else:
        bogus.write_bytes(b"not an image")
        args = [CONTENT, STYLE, bogus]
    r = _nst(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nst: error:"), r.stderr
    assert "Traceback" not in r.stderr
    if case != "too_few":
        assert str(args[-1]) in lines[0]
