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


def test_bench_look_prints_and_records_the_table(tmp_path):
    save = tmp_path / "results" / "look" / "t.json"
    md = tmp_path / "BENCHMARKS.md"
    peer = tmp_path / "peer.png"
    from PIL import Image

    Image.new("RGB", (64, 48), (120, 120, 120)).save(peer)
    former = tmp_path / "results" / "look" / "former" / "old.json"  # an earlier default's record, kept
    former.parent.mkdir(parents=True)
    former.write_text(json.dumps(dict(kind="look", preset="default", date="2026-01-01 00:00 UTC", threads=1,
                                      load_average=[0.1], command="nst bench --look", note="the old default",
                                      rows=[], budgets=[], peers=[])))
    images = tmp_path / "images"
    r = nst("bench", "--look", "--sizes", "40,48", "--pairs", "astronaut:great_wave_of_kanagawa", "--iterations",
            "3", "--budgets", "2,3", "--budget-sizes", "40", "--threads", "1", "--images", images,
            "--peer", f"astronaut:great_wave_of_kanagawa:48={peer}:1.5", "--save", save, "--markdown", md,
            timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads(save.read_text())
    assert [(row["size"], row["evaluations"]) for row in rec["rows"]] == [(40, 3), (48, 3)]
    assert [row["evaluations"] for row in rec["budgets"]] == [2, 3]
    assert rec["peers"][0]["seconds"] == 1.5 and rec["peers"][0]["style_match"] < 0.5
    for row in rec["rows"]:
        assert f"nst default" in r.stdout and f"{row['structure']:.3f}" in r.stdout
    assert "over 40, 48 px: structure mean" in r.stdout and "evaluations to the look at 40 px" in r.stdout
    text = md.read_text()
    assert "## The look (`nst bench --look`)" in text
    assert text.index("### look/t:") < text.index("### look/former/old:") and "note: the old default" in text
    assert sorted(p.name for p in images.iterdir()) == [  # each render, the budgets' too (side by side)
        "budget-astronaut-great_wave_of_kanagawa-40-2.png", "budget-astronaut-great_wave_of_kanagawa-40-3.png",
        "look-astronaut-great_wave_of_kanagawa-40.png", "look-astronaut-great_wave_of_kanagawa-48.png"]


@pytest.mark.parametrize("args", [["--pairs", "nobody:great_wave_of_kanagawa"], ["--sizes", "0"],
                                  ["--peer", "astronaut:great_wave_of_kanagawa:48=/nope.png:3"],
                                  ["--set", "strength=2"]])
def test_bench_look_bad_option_is_one_line_exit_2(args):
    r = nst("bench", "--look", *args, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
