"""A real `nst stylize` run records the look (structure, style match) per sample, in the sample's
JSON and its manifest row, with the values `nst look` gives on the same files; `nst report`
shows them per sample and as a scatter plot."""

from __future__ import annotations

import json

import pytest

from dataset_util import TINY, manifest_rows, nst, picture, tar_samples


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("look")
    data = base / "data"
    for i in range(2):
        picture(data / f"c{i}.png", (40, 32), seed=i)
    style = picture(base / "style.png", (32, 32), seed=9)
    out = base / "run"
    r = nst("stylize", data, "--style", style, "--out", out, *TINY)
    assert r.returncode == 0, r.stderr[-2000:]
    return base, data, style, out


def test_each_sample_records_the_look_nst_look_gives(run):
    base, data, style, out = run
    rows = {r["key"]: r for r in manifest_rows(out)}
    samples = tar_samples(out)
    assert sorted(rows) == sorted(samples) == ["00000000", "00000001"]
    for key, members in samples.items():
        record = json.loads(members["json"])
        row = rows[key]
        assert record["structure"] == row["structure"] and record["style_match"] == row["style_match"]
        assert 0.0 < row["structure"] < 1.0 and -1.0 < row["style_match"] < 1.0
        output = base / f"{key}.png"
        output.write_bytes(members["png"])
        content = data / f"c{int(key)}.png"
        r = nst("look", content, style, output, "--json")
        assert r.returncode == 0, r.stderr
        looked = json.loads(r.stdout)
        assert looked["structure"] == pytest.approx(row["structure"], abs=1e-4)
        assert looked["style_match"] == pytest.approx(row["style_match"], abs=1e-4)


def test_report_shows_the_look_per_sample_and_as_a_scatter(run):
    _, _, _, out = run
    r = nst("report", out, "--samples", 2)
    assert r.returncode == 0, r.stderr[-2000:]
    page = (out / "report" / "index.html").read_text()
    rows = manifest_rows(out)
    for row in rows:
        assert f"structure {row['structure']:.4g}" in page
        assert f"style match {row['style_match']:.4g}" in page
    svg = out / "report" / "plots" / "look.svg"
    assert svg.exists() and 'src="plots/look.svg"' in page
    points = svg.read_text().split('id="PathCollection_1"')[1].split("</g>")[0]
    assert points.count("<use ") == len(rows)  # one marker per ok sample
