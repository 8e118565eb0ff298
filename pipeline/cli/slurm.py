"""`nst submit` (plan, then sbatch) and the two commands the job scripts in slurm/ run.

`nst submit DATA --style S --out DIR [options] [-- stylize options]` parses the options
and prints; the planning and sbatch logic is pipeline.slurm.submit.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.app import app, fail
from pipeline.errors import EXIT_OK, EXIT_PREEMPTED, BadInput, NSTError
from pipeline.slurm import submit as submit_run
from pipeline.slurm.submit import SLURM_DIR


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def submit(
    ctx: typer.Context,
    data: Path = typer.Argument(..., help="DATA as for `nst stylize`"),
    style: List[Path] = typer.Option([], "--style", "-s", help="Style image or directory (repeatable)"),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory (shared file system)"),
    gpus: int = typer.Option(0, help="GPUs per node (nodes job) or 1 per task if >0 (array job); 0 = CPU"),
    nodes: int = typer.Option(1, help="Nodes of a whole-node job (Lightning num_nodes)"),
    tasks_per_node: Optional[int] = typer.Option(None, help="Ranks per node; default GPUS (1 on CPU)"),
    array: int = typer.Option(0, help="Submit an array job of this many one-worker tasks (0 = nodes job)"),
    throttle: int = typer.Option(0, help="At most this many array tasks at once (%P); 0 = no limit"),
    partition: str = typer.Option("", help="sbatch --partition"),
    account: str = typer.Option("", help="sbatch --account"),
    time_limit: str = typer.Option("", "--time", help="sbatch --time (e.g. 4:00:00)"),
    qos: str = typer.Option("", help="sbatch --qos"),
    cpus_per_task: int = typer.Option(0, help="sbatch --cpus-per-task (0 = site default)"),
    mem: str = typer.Option("", help="sbatch --mem"),
    grace: int = typer.Option(120, help="Seconds between the USR2 warning and the time limit (--signal)"),
    max_timeout_requeues: int = typer.Option(3, help="Time-outs in a row without progress before a task "
                                                     "stops requeueing"),
    python: str = typer.Option(sys.executable, help="Python of the environment the jobs run in"),
    sbatch_arg: List[str] = typer.Option([], "--sbatch-arg", help="Extra sbatch option (repeatable)"),
    job_name: str = typer.Option("", help="Job name (default nst-<DIR name>)"),
    script_dir: Path = typer.Option(SLURM_DIR, help="Where array.sbatch and nodes.sbatch live"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Write the plan, print the sbatch command, "
                                                          "do not submit"),
):
    """Plan a stylize run in DIR, then submit it to SLURM; prints the job id and how to follow it.

    Options after DATA that `nst submit` does not know (e.g. --size 512 --iterations 300
    --config X --set k=v --shard-size N --assign cycle --lease-ttl S) go to `nst stylize`.
    """
    try:
        o = submit_run.SubmitOptions(
            data=data, out=out, styles=list(style), extra=list(ctx.args), gpus=gpus, nodes=nodes,
            tasks_per_node=tasks_per_node, array=array, throttle=throttle, partition=partition, account=account,
            time_limit=time_limit, qos=qos, cpus_per_task=cpus_per_task, mem=mem, grace=grace,
            max_timeout_requeues=max_timeout_requeues, python=python, sbatch_args=list(sbatch_arg),
            job_name=job_name, script_dir=script_dir)
        res = submit_run.plan(o)
        if res.returncode != 0:
            sys.stderr.write(res.stderr)
            raise typer.Exit(res.returncode)
        typer.echo(res.stdout.strip())
        note = submit_run.idle_workers_note(o)
        if note:
            typer.echo(f"nst: note: {note}", err=True)
        submit_run.write_job(o)
        cmd = submit_run.sbatch_command(o)
        if dry_run:
            typer.echo(shlex.join(cmd))
            raise typer.Exit(EXIT_OK)
        job_id = submit_run.sbatch(o, cmd)
        shape = f", {array} tasks" if array else f", {nodes} node(s) x {o.tpn} rank(s)"
        typer.echo(f"submitted job {job_id} ({o.mode}{shape})")
        typer.echo(f"follow it:  nst status {o.out}      (squeue -j {job_id}; logs in {o.out}/slurm/logs)")
        typer.echo(f"job id: {job_id}")
    except NSTError as exc:
        fail(exc)


def _run_stylize(argv: list[str]) -> int:
    """Run `nst stylize` in this process (so our signal handlers are the ones that count)."""
    from pipeline.cli.app import app as _app

    try:
        rv = _app(args=argv, standalone_mode=False, prog_name="nst")
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return int(rv or 0) if isinstance(rv, int) else 0


@app.command("slurm-worker", hidden=True)
def slurm_worker(out: Path = typer.Argument(..., help="Run directory written by nst submit")):
    """Inside a job: be one worker of the run (array task or srun rank), requeue on preemption."""
    from pipeline.slurm import env as slurm_env, requeue as slurm
    from pipeline.run.stop import stop_requested

    slurm.install_signal_handlers()
    try:
        job = json.loads((out / "slurm" / "job.json").read_text())
    except (FileNotFoundError, ValueError) as exc:
        fail(BadInput(f"{out}/slurm/job.json unreadable ({exc}); submit with nst submit"))
    os.environ["NST_NUM_NODES"] = str(job.get("nodes", 1))
    task = slurm.SlurmTask.from_env()
    if task is not None:
        typer.echo(f"nst slurm: worker ready in job {slurm_env.worker_label(task.holder_info())}; "
                   f"USR2/TERM stop it cleanly", err=True)
    if _run_complete(out):
        typer.echo(f"nst: no work left in {out}; exiting", err=True)
        raise typer.Exit(EXIT_OK)
    if stop_requested():  # signalled while starting: stop now, before torch and Lightning start up
        from pipeline.run.stop import stop_reason

        typer.echo(f"nst: stopped ({stop_reason()}) before starting work; rerun the same command to resume",
                   err=True)
        code = EXIT_PREEMPTED
    else:
        code = _run_stylize(job["argv"])
    if stop_requested() and code == EXIT_PREEMPTED:
        if task is not None and task.ntasks <= 1:
            code = slurm.after_stop(out, task)
        # several ranks in one step: the batch shell requeues once they all stopped
    raise typer.Exit(code)


@app.command("slurm-requeue", hidden=True)
def slurm_requeue(out: Path = typer.Argument(..., help="Run directory")):
    """In a nodes job's batch shell after the ranks stopped: requeue the job, or refuse at the cap."""
    from pipeline.slurm import requeue as slurm

    raise typer.Exit(slurm.after_stop(out))


def _run_complete(out: Path) -> bool:
    from pipeline.run.plan import load_run
    from pipeline.run.status import summarize

    try:
        return bool(summarize(load_run(out))["complete"])
    except NSTError:
        return False
