"""`nst submit` (plan, then sbatch) and the two commands the job scripts in slurm/ run.

`nst submit DATA --style S --out DIR [options] [-- stylize options]` parses the options
and prints; the planning and sbatch logic is pipeline.slurm.submit.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.app import app, fail
from pipeline.errors import EXIT_OK, NSTError
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
    from pipeline.slurm.worker import run_worker

    try:
        code = run_worker(out, _run_stylize)
    except NSTError as exc:
        fail(exc)
    raise typer.Exit(code)


@app.command("slurm-requeue", hidden=True)
def slurm_requeue(out: Path = typer.Argument(..., help="Run directory")):
    """In a nodes job's batch shell after the ranks stopped: requeue the job, or refuse at the cap."""
    from pipeline.slurm import requeue as slurm

    try:
        code = slurm.after_stop(out)
    except NSTError as exc:
        fail(exc)
    raise typer.Exit(code)
