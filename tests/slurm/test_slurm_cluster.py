"""The SLURM layer on a real single-node SLURM: the real job scripts through sbatch.

Run by `make test-slurm` (NST_SLURM_TESTS=1); skipped by `make test`. The
`cluster` fixture starts munge + slurmctld + slurmd with tests/slurm/cluster.sh
(installing the packages if missing) and stops them by PID afterwards.
Each test runs the real `nst submit` on 24 tiny images with the real VGG16 on CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import make_image  # tests/conftest.py

pytestmark = pytest.mark.skipif(os.environ.get("NST_SLURM_TESTS") != "1",
                                reason="real-SLURM suite: run `make test-slurm`")

REPO = Path(__file__).resolve().parents[2]
NST = str(Path(sys.executable).with_name("nst"))
N_IMAGES = 24
# 32 px, 4 samples per shard -> 6 shards; iterations chosen so a task runs long enough to be signalled
TINY = ["--size", "32", "--shard-size", "4", "--device", "cpu",
        "--set", "batch_size=1"]  # one sample per step, so kills and lease take-overs land mid-shard
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
            "DEADLINE", "PREEMPTED"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    d = tmp_path_factory.mktemp("slurm")
    start = subprocess.run([str(REPO / "tests/slurm/cluster.sh"), "start", str(d)], capture_output=True,
                           text=True, timeout=600)
    assert start.returncode == 0, start.stderr
    env = {**os.environ, "SLURM_CONF": str(d / "slurm.conf"), "PYTHONWARNINGS": "ignore",
           "OMP_NUM_THREADS": "1"}
    yield env
    subprocess.run([str(REPO / "tests/slurm/cluster.sh"), "stop", str(d)], timeout=120)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    (d / "content").mkdir()
    for i in range(N_IMAGES):
        make_image((32, 32), i, "content").save(d / "content" / f"img{i:02d}.png")
    make_image((32, 32), 99, "style").save(d / "style.png")
    return d


def run(env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=REPO)


def submit(env, dataset: Path, out: Path, *opts: str, iterations: int = 10, ttl: float = 10,
           time_limit: str = "10") -> str:
    res = run(env, NST, "submit", dataset / "content", "--style", dataset / "style.png", "--out", out,
              "--grace", "30", "--time", time_limit, *opts, "--", *TINY, "--iterations", str(iterations),
              "--lease-ttl", str(ttl))
    assert res.returncode == 0, res.stderr
    assert f"nst status {out}" in res.stdout  # tells the user how to follow it
    assert (out / "run.json").is_file()  # the plan is written before sbatch
    return res.stdout.strip().splitlines()[-1].split()[-1]


def job_states(env, job_id: str) -> dict[str, dict]:
    """Array task id (or '-') -> {state, restarts, exit} from `scontrol show job -o`."""
    res = run(env, "scontrol", "show", "job", "-o", job_id)
    assert res.returncode == 0, res.stderr
    out = {}
    for line in res.stdout.splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        out[f.get("ArrayTaskId", "-")] = {"state": f["JobState"], "restarts": int(f.get("Restarts", 0)),
                                          "exit": f.get("ExitCode"), "job_id": f["JobId"]}
    return out


def wait_done(env, job_id: str, timeout: float = 240) -> dict[str, dict]:
    """Poll scontrol (sbatch --wait polls too rarely) until every task is in a final state."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = job_states(env, job_id)
        if states and all(s["state"] in TERMINAL for s in states.values()):
            return states
        time.sleep(1)
    raise AssertionError(f"job {job_id} not done after {timeout}s: {job_states(env, job_id)}")


def wait_for(cond, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def leases(out: Path) -> list[dict]:
    found = []
    for p in (out / "leases").glob("*.lease"):
        try:
            found.append({**json.loads(p.read_text()), "shard": p.stem})
        except (ValueError, FileNotFoundError):
            pass
    return found


def rows_in_progress(out: Path) -> list[dict]:
    """Every sample row written so far (journals of shards in progress and committed manifests)."""
    from pipeline.io.shards import latest_rows, read_journal, read_manifest

    rows = {}
    for m in sorted((out / "manifests").glob("*.jsonl")):
        rows.update({r["key"]: r for r in read_manifest(m)})
    for j in sorted((out / "work").glob("*.journal")):
        rows.update(latest_rows(read_journal(j)))
    return list(rows.values())


def assert_complete_exactly_once(env, out: Path) -> list[dict]:
    """nst verify passes; every planned sample is in the tars exactly once and ok in exactly one row."""
    res = run(env, NST, "verify", out)
    assert res.returncode == 0, res.stdout + res.stderr
    from pipeline.run.folder.plan import load_run

    planned = [s.key for s in load_run(out).iter_samples()]
    assert len(planned) == N_IMAGES
    members = Counter()
    for t in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(t) as tf:
            for m in tf.getmembers():
                members[m.name] += 1
    for key in planned:
        assert members[f"{key}.png"] == 1 and members[f"{key}.json"] == 1, key
    assert sum(members.values()) == 2 * N_IMAGES
    rows = [json.loads(line) for m in sorted((out / "manifests").glob("*.jsonl"))
            for line in m.read_text().splitlines() if line.strip()]
    assert sorted(r["key"] for r in rows) == sorted(planned)
    assert all(r["status"] == "ok" for r in rows)
    assert (out / "shardindex.json").is_file()
    assert not list((out / "leases").glob("*.lease"))
    return rows


def log_text(out: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted((out / "slurm" / "logs").glob("*.out")))


def test_array_job_completes_run_and_resubmit_finds_no_work(cluster, dataset, tmp_path):
    out = tmp_path / "run"
    job = submit(cluster, dataset, out, "--array", "3")
    states = wait_done(cluster, job)
    assert [s["state"] for s in states.values()] == ["COMPLETED"] * 3, states
    rows = assert_complete_exactly_once(cluster, out)
    assert len({r["worker"]["pid"] for r in rows}) >= 2  # the tasks shared the shards
    # status names the run's figures; a resubmitted job finds no work and exits 0 at once
    status = json.loads(run(cluster, NST, "status", out, "--json").stdout)
    assert status["ok"] == N_IMAGES and status["pending"] == 0 and status["shards_done"] == 6
    again = submit(cluster, dataset, out, "--array", "1")
    assert wait_done(cluster, again)["0"]["state"] == "COMPLETED"
    assert "no work left" in log_text(out)
    assert_complete_exactly_once(cluster, out)


def test_usr2_preemption_requeues_the_task_and_run_completes(cluster, dataset, tmp_path):
    out = tmp_path / "run"
    job = submit(cluster, dataset, out, "--array", "3", iterations=30)
    # wait until array task 1 holds a shard and has finished at least one sample there
    mine = wait_for(lambda: [le for le in leases(out) if le.get("slurm_array_task_id") == "1"
                             and any(r["worker"]["pid"] == le["pid"] for r in rows_in_progress(out))],
                    120, "array task 1 to finish a sample")[0]
    assert mine["slurm_array_job_id"] == job and mine["slurm_restart_count"] == 0
    status = run(cluster, NST, "status", out).stdout
    assert f"slurm job {job}_1" in status  # per-worker SLURM ids in `nst status`
    res = run(cluster, "scancel", "--signal=USR2", "--batch", f"{job}_1")
    assert res.returncode == 0, res.stderr
    done_by_pid_at_signal = sum(r["worker"]["pid"] == mine["pid"] for r in rows_in_progress(out))
    states = wait_done(cluster, job, timeout=300)
    assert [s["state"] for s in states.values()] == ["COMPLETED"] * 3, states
    assert states["1"]["restarts"] >= 1  # the task requeued itself ...
    history = json.loads((out / "slurm" / f"requeues-{job}_1.json").read_text())
    assert history["preemptions"] == 1 and history["last"]["kind"] == "preemption"
    logs = log_text(out)
    assert f"requeued {job}_1" in logs and "restart 1" in logs  # ... and ran again
    rows = assert_complete_exactly_once(cluster, out)
    # nothing lost beyond the in-flight sample: what the stopped task had finished stays in the output
    kept = sum(r["worker"]["pid"] == mine["pid"] for r in rows)
    assert kept >= done_by_pid_at_signal
    assert sum(r["attempt"] > 1 for r in rows) <= 1


def test_killed_task_lease_is_taken_over(cluster, dataset, tmp_path):
    out = tmp_path / "run"
    ttl = 6
    job = submit(cluster, dataset, out, "--array", "3", iterations=30, ttl=ttl)
    held = wait_for(lambda: [le for le in leases(out) if le.get("slurm_array_task_id") == "1"
                             and any(r["worker"]["pid"] == le["pid"] for r in rows_in_progress(out))],
                    120, "array task 1 to finish a sample")[0]
    assert held["ttl"] == ttl
    # --batch: SIGKILL straight to the worker (a plain `scancel --signal=KILL` is a cancel: TERM first)
    res = run(cluster, "scancel", "--signal=KILL", "--batch", f"{job}_1")
    assert res.returncode == 0, res.stderr
    killed_at = time.time()
    # the dead holder's lease is flagged stale by `nst status`, then another task takes the shard over
    lease_path = out / "leases" / f"{held['shard']}.lease"
    saw_stale = []

    def taken_over():
        if "STALE" in run(cluster, NST, "status", out).stdout:
            saw_stale.append(True)
        try:
            return json.loads(lease_path.read_text())["pid"] != held["pid"]
        except (FileNotFoundError, ValueError, KeyError):
            return False  # not yet (or mid-takeover)

    wait_for(taken_over, 120, "the lease to be taken over")
    takeover_s = time.time() - killed_at
    if takeover_s > 5:  # long enough for at least one status poll in between
        assert saw_stale, "nst status never flagged the dead worker's lease as stale"
    states = wait_done(cluster, job, timeout=300)
    assert states["1"]["state"] != "COMPLETED" and states["1"]["restarts"] == 0, states
    assert states["0"]["state"] == states["2"]["state"] == "COMPLETED", states
    rows = assert_complete_exactly_once(cluster, out)
    shard_rows = [r for r in rows if r["shard"] == held["shard"]]
    pids = {r["worker"]["pid"] for r in shard_rows}
    assert held["pid"] in pids and len(pids) >= 2, pids  # its durable samples kept, the rest finished by another
    print(f"\nlease of the killed task taken over after {takeover_s:.1f}s (ttl {ttl}s)")


def test_srun_two_ranks_in_one_job_survive_a_preemption(cluster, dataset, tmp_path):
    """A whole-node job: srun starts 2 Lightning ranks (CPU, gloo). USR2 to the job's steps stops
    both ranks; the batch shell requeues the job once they have released their leases; the
    requeued job finishes the run."""
    out = tmp_path / "run"
    job = submit(cluster, dataset, out, "--tasks-per-node", "2", iterations=20)
    wait_for(lambda: {r["worker"]["rank"] for r in rows_in_progress(out)} == {0, 1}, 120,
             "both ranks to finish a sample")
    assert {le.get("slurm_procid") for le in leases(out)} <= {0, 1}
    res = run(cluster, "scancel", "--signal=USR2", job)  # no --batch: every rank of the step
    assert res.returncode == 0, res.stderr
    states = wait_done(cluster, job, timeout=300)
    assert states["-"]["state"] == "COMPLETED" and states["-"]["restarts"] == 1, states
    logs = log_text(out)
    assert "ranks exited with 75" in logs and f"requeued {job}" in logs and "ranks exited with 0" in logs
    rows = assert_complete_exactly_once(cluster, out)
    assert {r["worker"]["rank"] for r in rows} == {0, 1}  # two Lightning ranks shared the work
    assert sum(r["attempt"] > 1 for r in rows) <= 2  # at most one in-flight sample per rank redone


def test_silent_task_lease_is_taken_over_only_after_the_ttl(cluster, dataset, tmp_path):
    """A holder that is alive but silent (SIGSTOP: a hung process or an unreachable node, where
    the dead-pid check cannot help) keeps its shard until its heartbeat is older than the TTL;
    then another task takes the shard over. The hung task is then killed hard."""
    out = tmp_path / "run"
    ttl = 10
    job = submit(cluster, dataset, out, "--array", "2", iterations=20, ttl=ttl)
    held = wait_for(lambda: [le for le in leases(out) if le.get("slurm_array_task_id") == "1"
                             and any(r["worker"]["pid"] == le["pid"] for r in rows_in_progress(out))],
                    120, "array task 1 to finish a sample")[0]
    res = run(cluster, "scancel", "--signal=STOP", "--batch", f"{job}_1")
    assert res.returncode == 0, res.stderr
    stopped_at = time.time()
    lease_path = out / "leases" / f"{held['shard']}.lease"

    def holder():
        try:
            return json.loads(lease_path.read_text())["pid"]
        except (FileNotFoundError, ValueError, KeyError):
            return None

    early = run(cluster, NST, "status", out).stdout
    if time.time() - stopped_at < ttl - 1:  # still within the TTL: the silent holder is not stale yet
        assert f"slurm job {job}_1" in early and "STALE" not in early, early
    wait_for(lambda: holder() not in (None, held["pid"]), 180, "the silent holder's lease to be taken over")
    takeover_s = time.time() - stopped_at
    assert takeover_s >= ttl - 1.5, takeover_s  # heartbeats stopped at most ~1 s before the STOP
    res = run(cluster, "scancel", "--signal=KILL", "--batch", f"{job}_1")
    assert res.returncode == 0, res.stderr
    states = wait_done(cluster, job, timeout=300)
    assert states["0"]["state"] == "COMPLETED" and states["1"]["state"] != "COMPLETED", states
    rows = assert_complete_exactly_once(cluster, out)
    pids = {r["worker"]["pid"] for r in rows if r["shard"] == held["shard"]}
    assert held["pid"] in pids and len(pids) >= 2, pids
    print(f"\nlease of the silent task taken over after {takeover_s:.1f}s (ttl {ttl}s)")


def hold_every_shard(env, dataset: Path, out: Path) -> None:
    """Plan the run (iterations 5), then hold every shard with a live lease of this test process,
    so a worker started on it can make no progress (and does no VGG work)."""
    res = run(env, NST, "submit", dataset / "content", "--style", dataset / "style.png", "--out", out,
              "--array", "1", "--dry-run", "--", *TINY, "--iterations", "5")
    assert res.returncode == 0, res.stderr
    (out / "leases").mkdir(exist_ok=True)
    for shard in json.loads((out / "run.json").read_text())["shards"]:
        (out / "leases" / f"{shard['name']}.lease").write_text(json.dumps(
            {"token": "test", "holder": "test", "host": os.uname().nodename, "pid": os.getpid(),
             "started": time.time(), "ttl": 3600}))


def test_scancel_is_not_undone_by_a_requeue(cluster, dataset, tmp_path):
    """A user's `scancel` sends TERM: the worker stops cleanly but must not requeue itself."""
    out = tmp_path / "run"
    hold_every_shard(cluster, dataset, out)
    job = submit(cluster, dataset, out, "--array", "1", iterations=5, ttl=3600)
    wait_for(lambda: "worker ready" in log_text(out), 120, "the worker to start")
    time.sleep(1)
    assert run(cluster, "scancel", f"{job}_0").returncode == 0
    states = wait_done(cluster, job, timeout=120)
    assert states["0"]["state"] == "CANCELLED" and states["0"]["restarts"] == 0, states
    time.sleep(2)
    assert job_states(cluster, job)["0"]["state"] == "CANCELLED"  # and it stays cancelled
    logs = log_text(out)
    # the handler's line is written the moment TERM arrives, however loaded the node; the "stopped"
    # line comes when the worker exits, within SLURM's KillWait (cluster.sh: 30 s, SLURM's default)
    assert "nst: SIGTERM received" in logs, logs[-2000:]
    assert "stopped (SIGTERM)" in logs and f"requeued {job}_0" not in logs, logs[-2000:]


def test_timeouts_without_progress_stop_requeueing(cluster, dataset, tmp_path):
    """A stop near the job's time limit is a time-out: requeued, but not forever. Here every shard
    is held by someone else, so the task can make no progress; with --max-timeout-requeues 0 the
    first time-out requeues (nothing to compare with yet) and the second ends the task with 76."""
    out = tmp_path / "run"
    hold_every_shard(cluster, dataset, out)
    # --time 1 with a 30 s grace: any stop is within grace + slack of the limit, i.e. a time-out
    job = submit(cluster, dataset, out, "--array", "1", "--max-timeout-requeues", "0", iterations=5, ttl=3600,
                 time_limit="1")
    for attempt in (1, 2):
        wait_for(lambda: log_text(out).count("worker ready") >= attempt, 120, f"attempt {attempt} to start")
        time.sleep(1)
        for lease in (out / "leases").glob("*.lease"):
            os.utime(lease)  # keep our leases fresh
        assert run(cluster, "scancel", "--signal=USR2", "--batch", f"{job}_0").returncode == 0
        if attempt == 1:
            wait_for(lambda: job_states(cluster, job)["0"]["restarts"] == 1, 120, "the time-out requeue")
    states = wait_done(cluster, job, timeout=120)
    assert states["0"]["state"] == "FAILED" and states["0"]["exit"] == "76:0", states
    history = json.loads((out / "slurm" / f"requeues-{job}_0.json").read_text())
    assert history["timeouts"] == 2 and history.get("preemptions", 0) == 0
    assert history["last"]["requeued"] is False and history["timeouts_without_progress"] == 1
    assert "time limit reached 1 times in a row without a finished sample (cap 0)" in log_text(out)
