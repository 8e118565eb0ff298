"""`nst bench` end to end on a tiny workload: the table, the JSON record, BENCHMARKS.md."""

import json
import subprocess
import sys
from pathlib import Path

from pipeline.bench.report import render_benchmarks
from pipeline.bench.quality import at_quality

ROOT = Path(__file__).resolve().parents[2]


def _nst(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "bench", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_bench_prints_classic_production_quality_and_renders_markdown(tmp_path):
    save = tmp_path / "results" / "cpu.json"
    md = tmp_path / "BENCHMARKS.md"
    pics = tmp_path / "pics"
    r = _nst("--size", "64", "--classic-evaluations", "6", "--iterations", "12", "--batch-size", "2",
             "--set", "coarse_stages=[[0.5,0.5]]", "--check-every", "2", "--profile", "2", "--wolfe-row",
             "--classic-jitter", "0.5",
             "--images", str(pics), "--save", str(save), "--markdown", str(md))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert any(line.startswith("classic (torch L-BFGS, no line search) ") for line in lines)
    assert any(line.startswith("torch L-BFGS strong-Wolfe ") for line in lines)   # the optional extra row
    rec = json.loads(save.read_text())
    classic, jittered, prod = rec["rows"][0], rec["rows"][1], rec["rows"][2]
    assert classic["images"] == 2 and classic["batch"] == 1 and classic["evaluations"] == 12
    # the same classic run from a start half a grey level away: its own final losses, against the bar
    assert jittered["path"].startswith("classic, jittered start") and jittered["evaluations"] == 12
    assert jittered["losses"] != classic["losses"] and jittered["jitter"] == 0.5 and classic["jitter"] == 0
    assert jittered["loss_ratio_mean"] == sum(a / b for a, b in zip(jittered["losses"], classic["losses"])) / 2
    assert "band_quality_evals" in prod
    assert prod["path"] == "production" and prod["batch"] == 2 and len(prod["losses"]) == 2
    # the schedule: 6 evaluations at 32 px (a quarter of a full one each), then up to 6 at 64 px,
    # checked every 2 and stopped at the first check where both samples are at their bar
    assert prod["planned_stages"] == [[6, 32], [6, 64]] and prod["stages"][0] == [6, 32]
    done = prod["stages"][1][0]
    assert 2 <= done <= 6 and prod["weighted_evaluations"] == 6 / 4 + done
    assert [e for e, _ in prod["curve"]] == [1.5 + k for k in range(2, done + 1, 2)]
    assert prod["curve"][-1][1] == prod["losses"]
    assert prod["stopped_at_bar"] == (done < 6)
    if prod["stopped_at_bar"]:
        assert prod["quality_evals"] == 1.5 + done and all(a <= b for a, b in zip(prod["losses"], classic["losses"]))
    # both stop at block5_conv1; the strong-Wolfe row runs the whole network
    assert classic["forward_to"] == prod["forward_to"] == "block5_conv1"
    assert rec["rows"][3]["forward_to"] == "block5_pool"
    for row in rec["rows"]:
        assert row["seconds"] > 0 and row["tflops"] > 0 and row["peak_mib"] > 0
        assert abs(row["images_per_hour"] * row["seconds_per_image"] - 3600) < 1e-6
    assert prod["time_ratio"] == prod["seconds_per_image"] / classic["seconds_per_image"]
    if prod["quality_evals"] is not None:   # a 6-evaluation bar is usually reached; the figures must agree
        assert abs(prod["images_per_hour_at_quality"] * prod["quality_seconds_per_image"] - 3600) < 1e-6
    # the sheet comes from the first row at the bar, failing that from the first within the band
    reached = [(r["quality_evals"], "bar") for r in rec["rows"][2:] if r.get("quality_evals") is not None] + \
        [(r["band_quality_evals"], "band") for r in rec["rows"][2:] if r.get("band_quality_evals") is not None]
    if reached:
        assert (pics / "classic-vs-production-64px.jpg").is_file()
        assert (rec["images"]["production_evaluations"], rec["images"]["at"]) == reached[0]
    else:
        assert "images" not in rec and not pics.exists()
    assert any(line.startswith("quality the bar's own spread: classic, jittered start") for line in lines)
    quality = [line for line in lines if line.startswith("quality production ") and "spread" not in line]
    assert len(quality) == 1 and f"(stages 6@32px -> {done}@64px)" in quality[0]
    text = md.read_text()
    assert "| classic (torch L-BFGS, no line search) | fp32 |" in text and "img/h at quality" in text
    # the look (nst look's ruler) of every final image, printed beside the loss
    for row in (classic, prod):
        assert len(row["looks"]) == 2 and all(0 < x["structure"] <= 1 and x["style_match"] < 1 for x in row["looks"])
        cell = " ".join(f"{x['structure']:.3f}/{x['style_match']:.3f}" for x in row["looks"])
        assert any(line.startswith(row["path"]) and line.endswith(cell) for line in lines)
    assert "structure / style match per sample" in text
    # the profile: a kernel table of one production evaluation with the convolutions' share
    p = rec["profiles"][0]
    assert p["batch"] == 2 and "aten::convolution_backward" in p["table"] and 0 < p["conv_share"] <= 1
    assert "convolutions" in r.stdout and "<summary>Profile" in text


def test_bench_bad_option_is_one_line_exit_2():
    r = _nst("--precision", "fp16", timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["nst: error: precision must be fp32, bf16 or auto (or a comma list), got 'fp16'"]
    r = _nst("--batch-size", "0", timeout=120)
    assert r.returncode == 2 and "batch-size" in r.stderr
    for bad in ("-1", "inf", "nan"):
        r = _nst("--classic-jitter", bad, timeout=120)
        assert r.returncode == 2
        assert r.stderr.strip().splitlines() == [
            f"nst: error: classic-jitter must be a finite number >= 0 of grey levels, got {float(bad)!r}"]
    r = _nst("--compile", "fast", timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "nst: error: compile must be default, reduce-overhead or max-autotune (or a comma list), got 'fast'"]


def test_committed_gpu_record_renders(tmp_path):
    """BENCHMARKS.md is rendered from the stored records (the GPU one came from benchmarks/gpu.sh)."""
    text = render_benchmarks(ROOT / "benchmarks" / "results", tmp_path / "B.md")
    rec = json.loads((ROOT / "benchmarks" / "results" / "gpu-h100.json").read_text())
    assert rec["device"] in text and "target >= 5x" in text


def test_at_quality_is_the_first_check_where_every_sample_reaches_its_bar():
    classic = dict(losses=[10.0, 20.0], seconds=40.0, images=2)
    # 100 evaluations at half size (25 full-size equivalents, 10 s), then 100 at full size (40 s)
    row = dict(losses=[5.0, 15.0], images=2, stages=[[100, 32], [100, 64]], stage_seconds=[10.0, 40.0],
               weighted_evaluations=125.0,
               curve=[[50.0, [12.0, 30.0]], [75.0, [9.0, 21.0]], [100.0, [9.5, 19.0]], [125.0, [5.0, 15.0]]])
    got = at_quality(classic, row)
    assert got["quality_evals"] == 100.0                      # at 75 the second sample is still above
    assert got["quality_seconds_per_image"] == (10.0 + 40.0 * 75 / 100) / 2
    assert got["images_per_hour_at_quality"] == 3600 / 20.0 and got["quality_speedup"] == 20.0 / 20.0
    never = dict(row, curve=[[125.0, [10.5, 15.0]]])
    assert at_quality(classic, never)["quality_evals"] is None
    # a wider bar (the classic's spread): reached at the first check inside it
    assert at_quality(classic, row, [12.0, 21.0])["quality_evals"] == 75.0
    assert at_quality(classic, never, [10.5, 20.0])["quality_evals"] == 125.0
