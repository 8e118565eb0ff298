"""`nst submit` checks and its sbatch line, and `nst status` naming SLURM workers, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_image

NST = str(Path(sys.executable).with_name("nst"))
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}
for k in [k for k in ENV if k.startswith("SLURM_")]:
    del ENV[k]


def nst(*args):
    return subprocess.run([NST, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=300)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("subdata")
    (d / "content").mkdir()
    for i in range(3):
        make_image((32, 32), i, "content").save(d / "content" / f"c{i}.png")
    make_image((32, 32), 9, "style").save(d / "style.png")
    return d


def test_submit_refuses_a_lightning_layout_mismatch_before_anything(small_data, tmp_path):
    out = tmp_path / "run"
    res = nst("submit", small_data / "content", "--style", small_data / "style.png", "--out", out,
              "--gpus", "2", "--", "--devices", "4")
    assert res.returncode == 2
    assert "--devices 4" in res.stderr and "--ntasks-per-node 2" in res.stderr
    assert not out.exists()  # nothing planned, nothing submitted
    res = nst("submit", small_data / "content", "--style", small_data / "style.png", "--out", out,
              "--array", "2", "--nodes", "2")
    assert res.returncode == 2 and "--array 2 with --nodes 2" in res.stderr


def test_submit_dry_run_plans_first_and_builds_the_sbatch_line(small_data, tmp_path):
    out = tmp_path / "run"
    res = nst("submit", small_data / "content", "--style", small_data / "style.png", "--out", out,
              "--gpus", "1", "--array", "3", "--throttle", "2", "--partition", "gpu", "--time", "4:00:00",
              "--grace", "90", "--dry-run", "--", "--size", "32", "--iterations", "5", "--shard-size", "2",
              "--overwrite")
    assert res.returncode == 0, res.stderr
    plan = json.loads((out / "run.json").read_text())
    assert plan["total"] == 3 and len(plan["shards"]) == 2
    # the cost estimate is for the GPUs the job asks for, from the newest cuda benchmark record
    assert "estimate   3 samples, 3 pending; 5 evaluations each" in res.stdout
    assert "cuda: " in res.stdout and "device-hours" in res.stdout and "benchmarks/results/gpu-" in res.stdout
    line = res.stdout.strip().splitlines()[-1]
    for part in ("sbatch", "--array=0-2%2", "--signal=B:USR2@90", "--gres=gpu:1", "--partition=gpu",
                 "--time=4:00:00", "--requeue", f"NST_RUN={out}", f"NST_PYTHON={sys.executable}",
                 "slurm/array.sbatch"):
        assert part in line, part
    job = json.loads((out / "slurm" / "job.json").read_text())
    assert "--overwrite" not in job["argv"]  # only the planner may discard a run, never a worker
    assert job["argv"][job["argv"].index("--devices") + 1] == "1"
    # a whole-node job: one rank per GPU, signal to every rank (no B:)
    res = nst("submit", small_data / "content", "--style", small_data / "style.png", "--out", out,
              "--gpus", "4", "--nodes", "2", "--dry-run", "--", "--size", "32", "--iterations", "5",
              "--shard-size", "2")
    line = res.stdout.strip().splitlines()[-1]
    for part in ("--nodes=2", "--ntasks-per-node=4", "--gres=gpu:4", "--signal=USR2@120", "slurm/nodes.sbatch"):
        assert part in line, part
    job = json.loads((out / "slurm" / "job.json").read_text())
    assert job["nodes"] == 2 and job["argv"][job["argv"].index("--devices") + 1] == "4"


def test_status_names_the_slurm_worker_and_flags_a_dead_holder(small_data, tmp_path):
    out = tmp_path / "run"
    res = nst("submit", small_data / "content", "--style", small_data / "style.png", "--out", out,
              "--array", "1", "--dry-run", "--", "--size", "32", "--iterations", "5", "--shard-size", "2")
    assert res.returncode == 0, res.stderr
    dead = subprocess.Popen(["true"])
    dead.wait()
    shard = json.loads((out / "run.json").read_text())["shards"][0]["name"]
    lease = out / "leases" / f"{shard}.lease"
    lease.parent.mkdir(exist_ok=True)
    info = {"token": "x", "holder": "rank0@host", "host": os.uname().nodename, "pid": dead.pid,
            "started": time.time(), "ttl": 600, "slurm_job_id": "81", "slurm_array_job_id": "77",
            "slurm_array_task_id": "3", "slurm_restart_count": 1, "slurm_procid": 0}
    lease.write_text(json.dumps(info))
    text = nst("status", out).stdout
    assert "slurm job 77_3 (restart 1)" in text and "STALE" in text
    js = json.loads(nst("status", out, "--json").stdout)
    assert js["active_leases"][0]["stale"] is True and js["active_leases"][0]["slurm_array_task_id"] == "3"
    # a live holder within its TTL is not flagged
    info["pid"] = os.getpid()
    lease.write_text(json.dumps(info))
    assert "STALE" not in nst("status", out).stdout
