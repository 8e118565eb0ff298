"""`nst bench` end to end on a tiny workload: the table, the JSON record, BENCHMARKS.md."""

import json
import subprocess
import sys
from pathlib import Path

from pipeline.bench.report import render_benchmarks
from pipeline.bench.run import time_to_reference_loss

ROOT = Path(__file__).resolve().parents[2]


def _nst(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "bench", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_bench_prints_table_saves_record_and_renders_markdown(tmp_path):
    save = tmp_path / "results" / "cpu.json"
    md = tmp_path / "BENCHMARKS.md"
    r = _nst("--size", "32", "--iterations", "3", "--batch-size", "2", "--precision", "fp32,bf16",
             "--profile", "--save", str(save), "--markdown", str(md))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert any(line.startswith("reference ") for line in lines)
    assert sum(line.startswith("production ") for line in lines) == 2
    assert lines[-1].startswith("ratio ")  # the table ends with the ratios
    assert "reference image 2/2" in r.stderr  # progress
    rec = json.loads(save.read_text())
    ref, prod = rec["rows"][0], rec["rows"][1]
    assert ref["path"] == "reference" and ref["images"] == 2 and ref["batch"] == 1
    assert prod["batch"] == 2 and len(prod["losses"]) == 2
    # the reference runs the whole network, production stops at block5_conv1
    assert ref["forward_to"] == "block5_pool" and prod["forward_to"] == "block5_conv1"
    assert ref["flops_per_eval"] > prod["flops_per_eval"] > 0
    for row in rec["rows"]:
        assert row["seconds"] > 0 and row["tflops"] > 0 and row["peak_mib"] > 0
        assert abs(row["images_per_hour"] * row["seconds_per_image"] - 3600) < 1e-6
    assert prod["time_ratio"] == prod["seconds_per_image"] / ref["seconds_per_image"]
    # fp32 losses along each production run (10 points by default, the last at the end)
    for row in rec["rows"][1:]:
        assert [e for e, _ in row["curve"]] == [1, 2, 3]
        assert row["curve"][-1][1] == row["losses"]
        assert "quality_evals" in row
    assert sum(line.startswith("ratio time-to-quality production ") for line in lines) == 2
    text = md.read_text()
    assert "| reference | fp32 |" in text and rec["device"] in text and rec["torch"] in text
    # the profile: a torch.profiler table of production evaluations, in the output and the markdown
    assert rec["profile"]["batch"] == 2 and "aten::convolution_backward" in rec["profile"]["table"]
    assert "profile: 6 production evaluations, bf16, batch 2" in r.stdout and "<summary>Profile" in text


def test_bench_bad_option_is_one_line_exit_2():
    r = _nst("--precision", "fp16", timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["nst: error: precision must be fp32, bf16 or auto (or a comma list), got 'fp16'"]
    r = _nst("--batch-size", "0", timeout=120)
    assert r.returncode == 2 and "batch-size" in r.stderr
    r = _nst("--compile", "fast", timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "nst: error: compile must be default, reduce-overhead or max-autotune (or a comma list), got 'fast'"]


def test_committed_gpu_record_renders(tmp_path):
    """BENCHMARKS.md is rendered from the stored records (the GPU one came from benchmarks/gpu.sh)."""
    text = render_benchmarks(ROOT / "benchmarks" / "results", tmp_path / "B.md")
    rec = json.loads((ROOT / "benchmarks" / "results" / "gpu-h100.json").read_text())
    assert rec["device"] in text and "target >= 5x" in text


def test_time_to_reference_loss_is_the_first_point_every_sample_reaches():
    ref = dict(losses=[10.0, 20.0])
    row = dict(losses=[5.0, 15.0], evaluations=3 * 100, images=3, time_ratio=0.5,
               curve=[[25, [12.0, 30.0]], [50, [9.0, 21.0]], [75, [9.5, 19.0]], [100, [5.0, 15.0]]])
    # the third sample has no reference twin and does not count; at 50 the second is still above
    got = time_to_reference_loss(ref, row)
    assert got["quality_evals"] == 75
    assert abs(got["quality_time_ratio"] - 0.5 * 0.75) < 1e-12 and abs(got["quality_speedup"] - 1 / 0.375) < 1e-12
    never = dict(row, curve=[[50, [11.0, 15.0]], [100, [10.5, 15.0]]])
    assert time_to_reference_loss(ref, never) == dict(quality_evals=None, quality_time_ratio=None,
                                                       quality_speedup=None)
    assert time_to_reference_loss(ref, dict(row, curve=None)) == {}
