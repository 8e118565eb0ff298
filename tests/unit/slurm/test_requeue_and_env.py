"""The SLURM layer without a cluster: time formats, time-out vs preemption, the requeue cap,
signals, `nst submit` checks and sbatch line, and `nst status` naming SLURM workers.
(The real-cluster suite is tests/slurm, run by `make test-slurm`.)"""

from __future__ import annotations

import os
import signal
import time

import pytest

from pipeline import slurm_env
from pipeline.slurm import requeue as slurm
from pipeline.run.execute.stop import reset, stop_cause, stop_requested

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
        assert stop_requested() and stop_cause().name == "SIGUSR2"
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
