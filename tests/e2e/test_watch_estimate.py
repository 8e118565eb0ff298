"""`nst status --watch` follows a real run in another process and exits when it completes;
`nst stylize --plan-only` prints the cost estimate and says where its rate comes from."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from dataset_util import ENV, NST, TINY, nst, picture


def tiny_dataset(base: Path, n: int) -> tuple[Path, Path]:
    """n tiny contents in base/data and one style."""
    for i in range(n):
        picture(base / "data" / f"c{i}.png", (40, 32), seed=i)
    return base / "data", picture(base / "style.png", (32, 32), seed=9)


def test_status_watch_follows_a_run_to_completion(tmp_path):
    data, style = tiny_dataset(tmp_path, 6)
    out = tmp_path / "run"
    run = subprocess.Popen([NST, "stylize", data, "--style", style, "--out", out, "--shard-size", "2",
                            "--set", "batch_size=1", "--size", "32", "--iterations", "20", "--no-progress",
                            "--device", "cpu"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not (out / "run.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        watch = subprocess.run([NST, "status", out, "--watch", "--interval", "0.3"], env=ENV,
                               capture_output=True, text=True, timeout=300)
        finished_at = time.time()
        assert run.wait(timeout=60) == 0, run.stderr.read().decode()[-2000:]
    finally:
        run.kill()
    assert watch.returncode == 0, watch.stderr
    lines = watch.stdout.strip().splitlines()
    assert lines[-1].startswith("stylize  6/6 done (6 ok, 0 failed)  shards 3/3") and "ETA done" in lines[-1]
    assert any("/6 done" in line and not line.startswith("stylize  6/6") for line in lines[:-1])  # saw it live
    assert finished_at - (out / "summary.json").stat().st_mtime < 5  # left soon after the run completed


def test_plan_only_prints_the_estimate_from_a_benchmark_then_from_the_run(tmp_path):
    data, style = tiny_dataset(tmp_path, 3)
    out = tmp_path / "run"
    args = ["stylize", data, "--style", style, "--out", out, *TINY]
    planned = nst(*args, "--plan-only")
    assert planned.returncode == 0, planned.stderr
    assert "estimate   3 samples, 3 pending; 6 evaluations each; working sizes 32x26 (3)" in planned.stdout
    assert "cpu: " in planned.stdout and "device-hours" in planned.stdout
    assert "from benchmark record benchmarks/results/cpu" in planned.stdout
    assert nst(*args).returncode == 0
    again = nst(*args, "--plan-only")
    assert "3 samples, 0 pending" in again.stdout and "this run's measured rate (3 samples on cpu)" in again.stdout
