"""How a SLURM worker stops and requeues (who it is: slurm/env.py).

A worker under SLURM installs `install_signal_handlers()` (USR2 from
`--signal=USR2@grace` or a preemption with `preempt_send_user_signal`, TERM from
a plain preemption or `scancel`): they only set the process-wide stop flag, so
the worker loop finishes its in-flight sample, releases its lease and returns
EXIT_PREEMPTED. Only then does `after_stop()` decide whether to requeue the job
with `scontrol requeue` (its own array task, or the plain job id):

- a stop that arrives well before the job's time limit is a preemption and
  may requeue without limit;
- a stop at the time limit (elapsed >= limit - grace - slack) is a time-out;
  time-outs in a row that finished no sample are capped (default 3), so a work
  unit that cannot finish within the limit does not loop forever.

Only a job that is still RUNNING requeues itself: a TERM from `scancel`, from
SLURM's own preemption requeue or from the time limit leaves the decision to SLURM.

Lightning's own auto-requeue (which writes and auto-loads `hpc_ckpt` files) is
never used: the runner hands Lightning a SLURMEnvironment with auto_requeue=False.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import EXIT_PREEMPTED, EXIT_REQUEUE_LIMIT
from pipeline.io.atomic import atomic_write_text, remove_stale_temps
from pipeline.io.oserrors import writing
from pipeline.run.execute.stop import request_stop
from pipeline.slurm_env import SlurmTask

DEFAULT_GRACE_S = 120  # the `@grace` of `--signal=USR2@grace` when the job does not say (NST_SLURM_GRACE)
DEFAULT_MAX_TIMEOUT_REQUEUES = 3  # NST_SLURM_MAX_TIMEOUT_REQUEUES

_SIGNALLED_AT: list[float] = []


# ---------------------------------------------------------------- signals

def _on_signal(signum, _frame) -> None:
    name = signal.Signals(signum).name
    if not _SIGNALLED_AT:
        _SIGNALLED_AT.append(time.time())
        # at once, in the job log: SLURM SIGKILLs KillWait seconds after a scancel's TERM, which on a
        # loaded node can come before the worker reaches its "stopped" line (still importing torch)
        try:
            os.write(2, f"nst: {name} received; stopping after the in-flight sample\n".encode())
        except OSError:
            pass
    request_stop(name)


def install_signal_handlers(signals=(signal.SIGUSR2, signal.SIGTERM)) -> None:
    """USR2 and TERM set the stop flag; the worker loop does the rest between samples."""
    from pipeline.run.execute.signals import mark_external

    mark_external()  # the dataset runner keeps these handlers (exit 75, requeue) instead of Ctrl-C's
    for sig in signals:
        signal.signal(sig, _on_signal)


def signalled_at() -> float | None:
    return _SIGNALLED_AT[0] if _SIGNALLED_AT else None


# ---------------------------------------------------------------- job facts

def parse_duration(text: str) -> int | None:
    """SLURM's time format (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS) in seconds; None = unlimited."""
    text = text.strip()
    if text.upper() in ("UNLIMITED", "INFINITE", "NONE", "PARTITION_LIMIT", ""):
        return None
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
        parts = [int(p) for p in text.split(":")]
        parts += [0] * (3 - len(parts))  # D-HH, D-HH:MM
        h, m, s = parts
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            h, m, s = 0, parts[0], 0
        elif len(parts) == 2:
            h, (m, s) = 0, parts
        else:
            h, m, s = parts
    return ((days * 24 + h) * 60 + m) * 60 + s


def parse_scontrol(text: str) -> dict:
    """Key=Value pairs of `scontrol show job -o` (values without spaces are all we read)."""
    return dict(re.findall(r"(?:^|\s)([A-Za-z][\w:/]*)=(\S*)", text))


def show_job(job_id: str) -> dict:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"scontrol show job {job_id} failed: {out.stderr.strip()}")
    return parse_scontrol(out.stdout.splitlines()[0] if out.stdout else "")


def elapsed_and_limit(job: dict, now: float | None = None) -> tuple[int, int | None]:
    """Seconds this run of the job has been going, and its time limit (None = unlimited)."""
    limit = parse_duration(job.get("TimeLimit", "UNLIMITED"))
    start = job.get("StartTime", "")
    if start and start not in ("Unknown", "None"):
        started = time.mktime(time.strptime(start, "%Y-%m-%dT%H:%M:%S"))
        elapsed = int((now or time.time()) - started)
    else:
        elapsed = parse_duration(job.get("RunTime", "0")) or 0
    return max(elapsed, 0), limit


def classify_stop(elapsed: int, limit: int | None, grace: int) -> str:
    """'timeout' when the stop came within the grace (plus slack) of the time limit, else 'preemption'."""
    if limit is None:
        return "preemption"
    slack = max(30, limit // 20)
    return "timeout" if elapsed >= limit - grace - slack else "preemption"


# ---------------------------------------------------------------- requeue

@dataclass
class Decision:
    kind: str  # 'timeout' or 'preemption'
    requeue: bool
    reason: str


def decide(kind: str, history: dict, done_now: int, max_timeouts: int) -> Decision:
    """Preemptions always requeue; time-outs requeue until `max_timeouts` in a row saw no sample finish.

    Progress is the run's count of finished samples against the count at this
    task's previous stop, so a sample that can never finish within the limit stops
    the loop once the rest of the run is done.
    """
    if kind == "preemption":
        return Decision(kind, True, "preempted: requeue without limit")
    progressed = done_now > int(history.get("done_at_last_stop", -1))
    stuck = 0 if progressed else int(history.get("timeouts_without_progress", 0)) + 1
    if stuck > max_timeouts:
        return Decision(kind, False, f"time limit reached {stuck} times in a row without a finished "
                                     f"sample (cap {max_timeouts}): not requeued; raise --time")
    return Decision(kind, True, f"time limit reached ({stuck}/{max_timeouts} in a row without "
                                f"progress): requeue")


def _history_path(run_dir: Path, task: SlurmTask) -> Path:
    return Path(run_dir) / "slurm" / f"requeues-{task.requeue_id}.json"


def write_history(run_dir: Path, task: SlurmTask, counts: dict) -> None:
    """Record this stop before any requeue; a failed write is the one-line output error (exit 6/7/8),
    and the job is then not requeued: a count that cannot be kept cannot cap the time-outs."""
    path = _history_path(run_dir, task)
    with writing(path.parent):
        remove_stale_temps(path.parent)  # what a worker killed mid-write left
        atomic_write_text(path, json.dumps(counts, indent=1) + "\n")


def read_history(run_dir: Path, task: SlurmTask) -> dict:
    try:
        return json.loads(_history_path(run_dir, task).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def finished_samples(run_dir: Path) -> int:
    """Samples of the run with a final row (ok or failed), from the run's own files."""
    from pipeline.run.folder.plan import load_run
    from pipeline.run.views.status import summarize

    summary = summarize(load_run(Path(run_dir)))
    return int(summary["ok"]) + int(summary["failed"])


def after_stop(run_dir: Path, task: SlurmTask | None = None, now: float | None = None, log=None) -> int:
    """Once the worker(s) stopped and released their leases: requeue or not; returns the exit status.

    EXIT_PREEMPTED after a requeue, EXIT_REQUEUE_LIMIT when the time-out cap forbids one.
    """
    log = log or (lambda msg: print(f"nst slurm: {msg}", file=sys.stderr, flush=True))
    task = task or SlurmTask.from_env()
    if task is None:
        return EXIT_PREEMPTED
    grace = int(os.environ.get("NST_SLURM_GRACE") or DEFAULT_GRACE_S)
    max_timeouts = int(os.environ.get("NST_SLURM_MAX_TIMEOUT_REQUEUES") or DEFAULT_MAX_TIMEOUT_REQUEUES)
    when = now or signalled_at() or time.time()
    try:
        job = show_job(task.job_id)
        elapsed, limit = elapsed_and_limit(job, when)
    except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as exc:
        log(f"cannot read the job's time limit ({exc}); treating the stop as a preemption")
        job, elapsed, limit = {"JobState": "RUNNING"}, 0, None
    if job.get("JobState") != "RUNNING":
        # scancel (CANCELLED), SLURM's own requeue or preemption (REQUEUED, PREEMPTED), time limit
        # (TIMEOUT): SLURM already decided this job's fate; requeueing would undo a user's cancel
        log(f"job {task.requeue_id} is {job.get('JobState')}: not requeued by the worker")
        return EXIT_PREEMPTED
    history = read_history(run_dir, task)
    done_now = finished_samples(run_dir)
    decision = decide(classify_stop(elapsed, limit, grace), history, done_now, max_timeouts)
    log(f"job {task.requeue_id}: stopped after {elapsed}s of "
        f"{str(limit) + 's' if limit is not None else 'no limit'} -> {decision.reason}")
    counts = dict(history)
    counts[decision.kind + "s"] = int(history.get(decision.kind + "s", 0)) + 1
    if decision.kind == "timeout":
        progressed = done_now > int(history.get("done_at_last_stop", -1))
        counts["timeouts_without_progress"] = 0 if progressed else int(
            history.get("timeouts_without_progress", 0)) + 1
    counts["done_at_last_stop"] = done_now
    counts["last"] = {"time": int(when), "elapsed_s": elapsed, "limit_s": limit, "kind": decision.kind,
                      "requeued": decision.requeue, "restart_count": task.restart_count}
    write_history(run_dir, task, counts)
    if not decision.requeue:
        return EXIT_REQUEUE_LIMIT
    # Everything durable is done: the requeue makes SLURM end this job (TERM, then KILL).
    try:
        out = subprocess.run(["scontrol", "requeue", task.requeue_id], capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:  # no scontrol on this node, or no controller
        log(f"cannot run scontrol requeue {task.requeue_id}: {exc}")
        return EXIT_PREEMPTED
    if out.returncode != 0:
        # already requeued by SLURM itself (PreemptMode=REQUEUE) or by another rank: not an error
        log(f"scontrol requeue {task.requeue_id}: {out.stderr.strip() or out.returncode}")
    else:
        log(f"requeued {task.requeue_id}")
    return EXIT_PREEMPTED
