"""`nst slurm-worker` inside a job: be one worker of a submitted run (array task or srun rank).

Reads the run's slurm/job.json, runs the recorded `nst stylize` command line in this process (so
the SLURM signal handlers installed here are the ones that count), and on preemption requeues the
job or array task itself when it is the only rank (several ranks: the batch shell requeues).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable

from pipeline import slurm_env
from pipeline.errors import EXIT_OK, EXIT_PREEMPTED, BadInput, NSTError
from pipeline.run.execute.stop import stop_cause, stop_requested
from pipeline.slurm import requeue


def run_worker(out: Path, run_argv: Callable[[list[str]], int]) -> int:
    """One worker's whole life in a job; returns the exit status. run_argv runs `nst ARGV` in-process."""
    requeue.install_signal_handlers()
    try:
        job = json.loads((out / "slurm" / "job.json").read_text())
    except (FileNotFoundError, ValueError) as exc:
        raise BadInput(f"{out}/slurm/job.json unreadable ({exc}); submit with nst submit") from None
    os.environ["NST_NUM_NODES"] = str(job.get("nodes", 1))
    task = slurm_env.SlurmTask.from_env()
    if task is not None:
        print(f"nst slurm: worker ready in job {slurm_env.worker_label(task.holder_info())}; "
              f"USR2/TERM stop it cleanly", file=sys.stderr)
    if _run_complete(out):
        print(f"nst: no work left in {out}; exiting", file=sys.stderr)
        return EXIT_OK
    if stop_requested():  # signalled while starting: stop now, before torch and Lightning start up
        print(f"nst: stopped ({stop_cause().name}) before starting work; rerun the same command to resume",
              file=sys.stderr)
        code = EXIT_PREEMPTED
    else:
        code = run_argv(job["argv"])
    if stop_requested() and code == EXIT_PREEMPTED:
        if task is not None and task.ntasks <= 1:
            code = requeue.after_stop(out, task)
        # several ranks in one step: the batch shell requeues once they all stopped
    return code


def _run_complete(out: Path) -> bool:
    from pipeline.run.folder.plan import load_run
    from pipeline.run.views.status import summarize

    try:
        return bool(summarize(load_run(out))["complete"])
    except NSTError:
        return False
