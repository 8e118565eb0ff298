"""Entry point every dataset command uses: plan, run on N devices, summarise, exit status.

`nst stylize`, `nst texture`, `nst invert`, ... differ only in the Task they pass.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import uuid
from pathlib import Path

from pipeline.errors import EXIT_DISK_FULL, EXIT_IO_ERROR, EXIT_NOT_WRITABLE, EXIT_OK, EXIT_PREEMPTED, EXIT_SAMPLES_FAILED
from pipeline.io.atomic import atomic_write_text
from pipeline.io.oserrors import OutputError, check_writable, is_output_error, output_error
from pipeline.run.execute import stop
from pipeline.run.folder.launches import record_launch
from pipeline.run.execute.options import RunOptions
from pipeline.run.folder.plan import RunPlan, plan_run
from pipeline.run.execute.signals import install_stop_signals
from pipeline.run.views.status import format_table, summarize, write_shardindex
from pipeline.run.task import Task
from pipeline.run.execute.threads import resolve_threads


def _accelerator(device: str) -> str:
    """Lightning's accelerator name for the resolved device."""
    from pipeline.engine.device import resolve_device

    return "gpu" if resolve_device(device).startswith("cuda") else "cpu"


def secondary_rank() -> bool:
    """True in a process that Lightning or srun started as a rank other than 0.

    Such a process re-runs the same command line; it must never act on --overwrite
    (that would discard the run rank 0 has just started).
    """
    return any(os.environ.get(k, "0") not in ("", "0") for k in ("LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def execute(task: Task, opts: RunOptions) -> int:
    """Run (or resume) `task` into opts.out; returns the process exit status."""
    opts.validate()
    accelerator = _accelerator(opts.device)
    if not secondary_rank():
        check_writable(Path(opts.out))  # a read-only or foreign folder: refused before any work
    launcher = stop.open_channel()  # shared with the ranks Lightning starts from here
    try:
        return _execute(task, opts, accelerator, launcher)
    except OSError as exc:
        if not is_output_error(exc):
            raise
        raise output_error(exc, Path(opts.out)) from None
    finally:
        if launcher:
            stop.close_channel()


def _execute(task: Task, opts: RunOptions, accelerator: str, launcher: bool) -> int:
    threads = resolve_threads(opts.threads, opts.devices if accelerator == "cpu" else 1, opts.deterministic)
    plan = plan_run(Path(opts.out), task, opts.shard_size, overwrite=opts.overwrite and not secondary_rank(),
                    retry_failed=opts.retry_failed, hash_inputs=opts.hash_inputs,
                    check=not secondary_rank())  # rank 0 has just checked the inputs
    if not secondary_rank():
        record_launch(plan.root, opts.devices, accelerator)
    install_stop_signals()  # after planning: a Ctrl-C while planning simply ends the command
    from pipeline.run.execute.lightning import run_predict

    retry_id = None
    if opts.retry_failed:  # Lightning's other ranks inherit rank 0's environment
        if not secondary_rank() or "NST_RETRY_ID" not in os.environ:
            os.environ["NST_RETRY_ID"] = uuid.uuid4().hex
        retry_id = os.environ["NST_RETRY_ID"]
    rank, rank_codes = run_predict(plan, task, dataclasses.replace(opts, retry_id=retry_id), accelerator, threads)
    if stop.stop_requested():
        return _stopped(plan, opts, launcher)
    summary = summarize(plan, opts.lease_ttl)
    if summary["complete"] and rank == 0:
        # rank 0 only: every rank waits for all commits, so rank 0 sees the run complete; a second
        # rank that failed this write would exit non-zero, and Lightning SIGKILLs rank 0 when a rank
        # it started does so (crash sweep, issue 24)
        write_shardindex(plan)
    code = EXIT_OK if summary["failed"] == 0 else EXIT_SAMPLES_FAILED
    if not summary["complete"]:
        code = EXIT_PREEMPTED  # another holder stopped mid-way; resume finishes it
    if rank == 0:
        atomic_write_text(plan.root / "summary.json", json.dumps(summary, indent=1))
        print(format_table(summary), file=sys.stderr)
        if summary["complete"]:
            for line in task.finish(plan.root, opts.device, opts.progress):
                print(line, file=sys.stderr)
        if code == EXIT_SAMPLES_FAILED:
            print(f"nst: {summary['failed']} of {summary['planned']} samples failed; see `nst status "
                  f"{plan.root}`, rerun with --retry-failed to retry them", file=sys.stderr)
        failed_write = [c for c in rank_codes if c in (EXIT_DISK_FULL, EXIT_NOT_WRITABLE, EXIT_IO_ERROR)]
        if failed_write and code in (EXIT_OK, EXIT_SAMPLES_FAILED):
            # A rank this one started failed a write after its last sample (the shard index, a
            # folder's fsync) and printed the one line: this rank rewrote those files, but a disk
            # that failed once must not report success (found by the crash sweep, issue 24).
            code = failed_write[0]
    elif code == EXIT_SAMPLES_FAILED:
        # Rank 0 reports failed samples. A secondary rank must exit 0 here: Lightning's
        # launcher SIGKILLs rank 0 as soon as a child it started exits non-zero, which
        # would cut short rank 0's summary (and nst visualize's reduce step).
        code = EXIT_OK
    return code


def _stopped(plan: RunPlan, opts: RunOptions, launcher: bool) -> int:
    """Every rank has stopped (signal, preemption or an unwritable output): the one line and
    the exit status. A rank Lightning started exits 0 and leaves the report to rank 0."""
    cause = stop.stop_cause()
    if not launcher:
        return EXIT_OK
    if cause.message:
        raise OutputError(cause.message, cause.exit_code)
    if cause.exit_code == EXIT_PREEMPTED:  # SLURM: `nst slurm-worker` requeues
        print(f"nst: stopped ({cause.name}); finished samples are saved, rerun the same command to resume",
              file=sys.stderr)
        return EXIT_PREEMPTED
    summary = summarize(plan, opts.lease_ttl)
    print(f"nst: stopped by {cause.name}: {summary['ok'] + summary['failed']}/{summary['planned']} done; "
          f"run the same command to resume", file=sys.stderr)
    return cause.exit_code
