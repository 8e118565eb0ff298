"""`nst submit` (plan, then sbatch) and the two commands the job scripts in slurm/ run.

`nst submit DATA --style S --out DIR [options] [-- stylize options]` writes
DIR/run.json through `nst stylize --plan-only` (so a bad input or a different
run in DIR fails here, not on the cluster), records the worker command in
DIR/slurm/job.json, submits slurm/array.sbatch or slurm/nodes.sbatch, and
prints the job id and the `nst status` command to follow it.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.app import app, fail
from pipeline.errors import EXIT_OK, EXIT_PREEMPTED, BadInput, NSTError
from pipeline.io.atomic import atomic_write_text

SLURM_DIR = Path(__file__).resolve().parents[2] / "slurm"

def _option_value(args: list[str], name: str) -> str | None:
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def check_lightning_layout(nodes: int, tasks_per_node: int, extra: list[str]) -> None:
    """Refuse before sbatch what Lightning would refuse on the cluster.

    Lightning requires devices == --ntasks-per-node and num_nodes == --nodes; the
    worker passes devices=tasks per node and num_nodes=nodes, so the only way to
    disagree is a --devices in the forwarded stylize options. Lightning's own
    check runs on the layout we are about to request.
    """
    devices = _option_value(extra, "--devices")
    if devices is not None:
        try:
            n = int(devices)
        except ValueError:
            raise BadInput(f"--devices {devices!r} is not an integer")
        if n != tasks_per_node:
            raise BadInput(f"stylize option --devices {n} does not match --ntasks-per-node {tasks_per_node} "
                           f"(GPUS/TASKS per node): Lightning requires devices = tasks per node; "
                           f"drop --devices from ARGS or submit with GPUS={n}")
    from lightning_fabric.plugins.environments import SLURMEnvironment

    saved = {k: os.environ.get(k) for k in ("SLURM_NTASKS_PER_NODE", "SLURM_NNODES", "SLURM_JOB_NAME")}
    os.environ.update(SLURM_NTASKS_PER_NODE=str(tasks_per_node), SLURM_NNODES=str(nodes),
                      SLURM_JOB_NAME="nst")
    try:
        with warnings.catch_warnings():  # "srun is available but not used": true here, on the login node
            warnings.simplefilter("ignore")
            SLURMEnvironment(auto_requeue=False).validate_settings(num_devices=tasks_per_node, num_nodes=nodes)
    except ValueError as exc:
        raise BadInput(f"Lightning refuses this layout: {exc}")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def build_sbatch(out: Path, mode: str, *, nodes: int, tasks_per_node: int, gpus: int, array: int,
                 throttle: int, partition: str, account: str, time_limit: str, qos: str, cpus_per_task: int,
                 mem: str, grace: int, python: str, max_timeout_requeues: int, job_name: str,
                 sbatch_args: list[str], script_dir: Path) -> list[str]:
    """The sbatch command line; every site setting is an argument, none is assumed."""
    logs = out / "slurm" / "logs"
    cmd = ["sbatch", "--parsable", f"--job-name={job_name}", "--requeue", "--open-mode=append",
           f"--chdir={Path.cwd()}"]
    if mode == "array":
        cmd += [f"--array=0-{array - 1}" + (f"%{throttle}" if throttle else ""), "--ntasks=1",
                f"--signal=B:USR2@{grace}", f"--output={logs}/%x-%A_%a.out"]
        if gpus:
            cmd.append("--gres=gpu:1")
    else:
        cmd += [f"--nodes={nodes}", f"--ntasks-per-node={tasks_per_node}", f"--signal=USR2@{grace}",
                f"--output={logs}/%x-%j.out"]
        if gpus:
            cmd.append(f"--gres=gpu:{gpus}")
    for flag, value in (("--partition", partition), ("--account", account), ("--time", time_limit),
                        ("--qos", qos), ("--mem", mem)):
        if value:
            cmd.append(f"{flag}={value}")
    if cpus_per_task:
        cmd.append(f"--cpus-per-task={cpus_per_task}")
    env = {"NST_RUN": str(out), "NST_PYTHON": python, "NST_SLURM_GRACE": str(grace),
           "NST_SLURM_MAX_TIMEOUT_REQUEUES": str(max_timeout_requeues)}
    cmd.append("--export=ALL," + ",".join(f"{k}={v}" for k, v in env.items()))
    cmd += list(sbatch_args)
    cmd.append(str(script_dir / ("array.sbatch" if mode == "array" else "nodes.sbatch")))
    return cmd


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
        extra = list(ctx.args)
        if extra and extra[0] == "--":
            extra = extra[1:]
        for bad in sorted({a.split("=", 1)[0] for a in extra} & {"--out", "-o", "--plan-only"}):
            raise BadInput(f"option {bad} is set by nst submit; remove it from ARGS")
        for name, value, low in (("--nodes", nodes, 1), ("--gpus", gpus, 0), ("--array", array, 0),
                                 ("--throttle", throttle, 0), ("--grace", grace, 1),
                                 ("--max-timeout-requeues", max_timeout_requeues, 0)):
            if value < low:
                raise BadInput(f"{name} must be >= {low}, got {value}")
        if array and nodes > 1:
            raise BadInput(f"--array {array} with --nodes {nodes}: an array task is one worker on one node")
        mode = "array" if array else "nodes"
        tpn = 1 if mode == "array" else (tasks_per_node or max(gpus, 1))
        if tpn < 1:
            raise BadInput(f"--tasks-per-node must be >= 1, got {tpn}")
        if mode == "nodes" and gpus and tpn != gpus:
            raise BadInput(f"--tasks-per-node {tpn} with --gpus {gpus}: one Lightning rank per GPU needs "
                           f"tasks per node = GPUs per node")
        check_lightning_layout(nodes if mode == "nodes" else 1, tpn, extra)
        if not Path(python).exists():
            raise BadInput(f"--python {python!r} does not exist (the jobs' Python environment)")
        script = script_dir / ("array.sbatch" if mode == "array" else "nodes.sbatch")
        if not script.is_file():
            raise BadInput(f"job script {str(script)!r} not found (--script-dir)")
        out = out.resolve()
        data = data.resolve()
        styles = [str(s.resolve()) for s in style]
        base = [str(data)] + [a for s in styles for a in ("--style", s)] + ["--out", str(out)]
        worker_extra = [a for a in extra if a != "--overwrite"]  # only the planner may discard a run
        forwarded = [a for i, a in enumerate(worker_extra)
                     if a != "--devices" and not a.startswith("--devices=")
                     and not (i > 0 and worker_extra[i - 1] == "--devices")]
        # 1. the plan: same code path as `nst stylize`, so inputs and run identity are checked here
        plan_cmd = [python, "-m", "pipeline.cli", "stylize", *base, *extra, "--plan-only",
                    *(["--device", "cuda"] if gpus else [])]  # the cost estimate is for the job's devices
        res = subprocess.run(plan_cmd, capture_output=True, text=True)
        if res.returncode != 0:
            sys.stderr.write(res.stderr)
            raise typer.Exit(res.returncode)
        typer.echo(res.stdout.strip())
        n_shards = len(json.loads((out / "run.json").read_text())["shards"])
        workers = array if mode == "array" else nodes * tpn
        if workers > n_shards:
            typer.echo(f"nst: note: {workers} workers for {n_shards} shard(s); the extra workers only wait "
                       f"(lower --shard-size for more shards)", err=True)
        # 2. what every worker runs
        job = {"argv": ["stylize", *base, *forwarded, "--devices", str(tpn)],
               "mode": mode, "nodes": nodes if mode == "nodes" else 1, "tasks_per_node": tpn,
               "gpus": gpus, "created": time.time()}
        atomic_write_text(out / "slurm" / "job.json", json.dumps(job, indent=1) + "\n")
        (out / "slurm" / "logs").mkdir(parents=True, exist_ok=True)
        # 3. sbatch
        cmd = build_sbatch(out, mode, nodes=nodes, tasks_per_node=tpn, gpus=gpus, array=array,
                           throttle=throttle, partition=partition, account=account, time_limit=time_limit,
                           qos=qos, cpus_per_task=cpus_per_task, mem=mem, grace=grace, python=python,
                           max_timeout_requeues=max_timeout_requeues,
                           job_name=job_name or f"nst-{out.name}", sbatch_args=sbatch_arg, script_dir=script_dir)
        if dry_run:
            typer.echo(shlex.join(cmd))
            raise typer.Exit(EXIT_OK)
        try:
            res = subprocess.run(cmd, capture_output=True, text=True)
        except FileNotFoundError:
            raise BadInput("sbatch not found: run nst submit on a SLURM login node")
        if res.returncode != 0:
            raise BadInput(f"sbatch refused the job: {res.stderr.strip()}  (command: {shlex.join(cmd)})")
        job_id = res.stdout.strip().split(";")[0]
        with open(out / "slurm" / "submissions.jsonl", "a") as f:
            f.write(json.dumps({"job_id": job_id, "time": time.time(), "sbatch": cmd}) + "\n")
        typer.echo(f"submitted job {job_id} ({mode}{f', {array} tasks' if array else f', {nodes} node(s) x {tpn} rank(s)'})")
        typer.echo(f"follow it:  nst status {out}      (squeue -j {job_id}; logs in {out}/slurm/logs)")
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
