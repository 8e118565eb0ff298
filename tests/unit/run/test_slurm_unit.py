"""The SLURM layer without a cluster: time formats, time-out vs preemption, the requeue cap,
signals, `nst submit` checks and sbatch line, and `nst status` naming SLURM workers.
(The real-cluster suite is tests/slurm, run by `make test-slurm`.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_image
from pipeline.slurm import env as slurm_env, requeue as slurm
from pipeline.run.stop import reset, stop_reason, stop_requested

NST = str(Path(sys.executable).with_name("nst"))
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}
for k in [k for k in ENV if k.startswith("SLURM_")]:
    del ENV[k]


@pytest.mark.parametrize("text,seconds", [("30", 1800), ("2:30", 150), ("1:00:00", 3600),
                                          ("1-02:03:04", 93784), ("2-12", 216000), ("1-00:30", 88200),
                                          ("UNLIMITED", None), ("Partition_Limit", None)])
def test_parse_duration(text, seconds):
    assert slurm.parse_duration(text) == seconds


def test_timeout_or_preemption_by_elapsed_time():
    # --time=1:00:00 --signal=USR2@120: the time-limit warning comes at ~3480 s
    assert slurm.classify_stop(3480, 3600, 120) == "timeout"
    assert slurm.classify_stop(3300, 3600, 120) == "timeout"  # within grace + slack (180 s)
    assert slurm.classify_stop(1200, 3600, 120) == "preemption"
    assert slurm.classify_stop(10, None, 120) == "preemption"  # no limit: never a time-out


def test_preemptions_requeue_without_limit_timeouts_are_capped_without_progress():
    assert all(slurm.decide("preemption", {"preemptions": n}, 0, 3).requeue for n in range(100))
    history: dict = {}
    done = 5
    verdicts = []
    for _ in range(6):  # the same 5 samples done at every time-out: no progress
        d = slurm.decide("timeout", history, done, 3)
        verdicts.append(d.requeue)
        progressed = done > history.get("done_at_last_stop", -1)
        history = {"timeouts_without_progress": 0 if progressed else history.get("timeouts_without_progress", 0) + 1,
                   "done_at_last_stop": done}
    assert verdicts == [True, True, True, True, False, False]
    assert "raise --time" in slurm.decide("timeout", history, done, 3).reason
    # progress since the last stop resets the count
    assert slurm.decide("timeout", history, done + 1, 3).requeue


def test_task_ids_requeue_target_and_holder_label():
    arr = slurm_env.SlurmTask.from_env({"SLURM_JOB_ID": "107", "SLURM_ARRAY_JOB_ID": "100",
                                    "SLURM_ARRAY_TASK_ID": "7", "SLURM_RESTART_COUNT": "2"})
    assert arr.requeue_id == "100_7"
    info = arr.holder_info()
    assert info["slurm_array_job_id"] == "100" and info["slurm_restart_count"] == 2
    assert slurm_env.worker_label(info) == "100_7 (restart 2)"
    plain = slurm_env.SlurmTask.from_env({"SLURM_JOB_ID": "55", "SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2"})
    assert plain.requeue_id == "55" and plain.ntasks == 2
    assert slurm_env.worker_label(plain.holder_info()) == "55 (rank 1)"
    assert slurm_env.SlurmTask.from_env({}) is None and slurm_env.holder_info({}) == {}


def test_usr2_and_term_set_the_stop_flag():
    old = {s: signal.getsignal(s) for s in (signal.SIGUSR2, signal.SIGTERM)}
    reset()
    try:
        slurm.install_signal_handlers()
        os.kill(os.getpid(), signal.SIGUSR2)
        time.sleep(0.05)
        assert stop_requested() and stop_reason() == "SIGUSR2"
        assert slurm.signalled_at() is not None
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        reset()


def test_parse_scontrol_and_elapsed():
    line = ("JobId=12 ArrayJobId=10 ArrayTaskId=2 JobName=nst JobState=RUNNING Reason=None Requeue=1 "
            "Restarts=1 RunTime=00:10:00 TimeLimit=01:00:00 StartTime=2026-01-01T10:00:00 Command=/x/y.sbatch")
    job = slurm.parse_scontrol(line)
    assert job["JobState"] == "RUNNING" and job["TimeLimit"] == "01:00:00" and job["Restarts"] == "1"
    start = time.mktime(time.strptime("2026-01-01T10:00:00", "%Y-%m-%dT%H:%M:%S"))
    assert slurm.elapsed_and_limit(job, start + 3480) == (3480, 3600)


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


@pytest.mark.slow  # starts `nst` processes or compiles: not in `make test-fast`
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


@pytest.mark.slow  # starts `nst` processes or compiles: not in `make test-fast`
def test_submit_dry_run_plans_first_and_builds_the_sbatch_line(small_data, tmp_path):
    out = tmp_path / "run"
    res = nst("submit", small_data / "content", "--style", small_data / "style.png", "--out", out,
              "--gpus", "1", "--array", "3", "--throttle", "2", "--partition", "gpu", "--time", "4:00:00",
              "--grace", "90", "--dry-run", "--", "--size", "32", "--iterations", "5", "--shard-size", "2",
              "--overwrite")
    assert res.returncode == 0, res.stderr
    plan = json.loads((out / "run.json").read_text())
    assert len(plan["samples"]) == 3 and len(plan["shards"]) == 2
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


@pytest.mark.slow  # starts `nst` processes or compiles: not in `make test-fast`
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
