"""End to end: `nst imagine` for a class and for channels through the real runner, then `nst verify`;
bad targets fail with one line and status 2."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from dataset_util import manifest_rows, nst, tar_samples

SMOKE = ["--size", "64", "--iterations", "30", "--no-progress", "--device", "cpu"]


def records(out: Path) -> list[dict]:
    return [json.loads(m["json"]) for _, m in sorted(tar_samples(out).items())]


@pytest.mark.parametrize("target", [["--class", "dumbbell"], ["--layer", "block4_conv3", "--channels", "7-7"]],
                         ids=["class", "channel"])
def test_smoke_one_target_through_the_runner(tmp_path, target):
    out = tmp_path / "run"
    r = nst("imagine", *target, "--out", out, *SMOKE)
    assert r.returncode == 0, r.stderr[-2000:]
    check = nst("verify", out)
    assert check.returncode == 0, check.stderr
    rows = manifest_rows(out)
    assert len(rows) == 1 and rows[0]["status"] == "ok"
    (rec,) = records(out)
    members = tar_samples(out)[rec["key"]]
    image = Image.open(io.BytesIO(members["png"]))
    assert image.size == (64, 64)
    assert rec["iterations"] == 30 and rec["std"] > 0.01
    if target[0] == "--class":
        assert rec["target"] == 543 and rec["class_name"] == "dumbbell" and 0.0 <= rec["p_target"] <= 1.0
        assert rec["params"]["network"] == "efficientnet-lite0"
    else:
        assert rec["target"] == 7 and rec["layer"] == "block4_conv3" and rec["params"]["network"] == "vgg16"
    sheet = Image.open(out / "imagine" / "sheet.png")
    assert sheet.width >= 64 and sheet.height > 64
    again = nst("imagine", *target, "--out", out, *SMOKE)  # a finished run: nothing redone
    assert again.returncode == 0 and len(manifest_rows(out)) == 1


@pytest.mark.parametrize("args, needle", [
    (["--class", "dumbel"], "'dumbel'"),
    (["--layer", "block4_conv3", "--channels", "9-3"], "9-3"),
    (["--layer", "block4_conv3", "--channels", "0-512"], "512"),
], ids=["class-name", "reversed", "too-wide"])
def test_bad_targets_are_one_line_and_status_2(tmp_path, args, needle):
    out = tmp_path / "run"
    r = nst("imagine", *args, "--out", out, *SMOKE)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr
    assert not out.exists() or not any((out / "shards").glob("*.tar"))
