"""Plan a stylize run for SLURM and submit it with sbatch: what `nst submit` does, minus the printing.

The plan runs through `nst stylize --plan-only` (so a bad input or a different run in
DIR fails on the login node, not on the cluster); the worker command is recorded in
DIR/slurm/job.json, then slurm/array.sbatch or slurm/nodes.sbatch is submitted.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import BadInput
from pipeline.io.atomic import atomic_write_text, remove_stale_temps
from pipeline.io.oserrors import writing
from pipeline.resources import data_dir

SLURM_DIR = data_dir("slurm")  # the job scripts: slurm/ in a checkout, package data in a wheel


@dataclass
class SubmitOptions:
    """One submission, checked in __post_init__ before anything is written or submitted.

    `extra` holds the options forwarded to `nst stylize` (a leading "--" is dropped).
    """

    data: Path
    out: Path
    styles: list[Path] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    gpus: int = 0
    nodes: int = 1
    tasks_per_node: int | None = None
    array: int = 0
    throttle: int = 0
    partition: str = ""
    account: str = ""
    time_limit: str = ""
    qos: str = ""
    cpus_per_task: int = 0
    mem: str = ""
    grace: int = 120
    max_timeout_requeues: int = 3
    python: str = sys.executable
    sbatch_args: list[str] = field(default_factory=list)
    job_name: str = ""
    script_dir: Path = SLURM_DIR

    def __post_init__(self):
        extra = list(self.extra)
        self.extra = extra[1:] if extra and extra[0] == "--" else extra
        for bad in sorted({a.split("=", 1)[0] for a in self.extra} & {"--out", "-o", "--plan-only"}):
            raise BadInput(f"option {bad} is set by nst submit; remove it from ARGS")
        for name, value, low in (("--nodes", self.nodes, 1), ("--gpus", self.gpus, 0), ("--array", self.array, 0),
                                 ("--throttle", self.throttle, 0), ("--grace", self.grace, 1),
                                 ("--max-timeout-requeues", self.max_timeout_requeues, 0)):
            if value < low:
                raise BadInput(f"{name} must be >= {low}, got {value}")
        if self.array and self.nodes > 1:
            raise BadInput(f"--array {self.array} with --nodes {self.nodes}: an array task is one worker on one node")
        self.mode = "array" if self.array else "nodes"
        self.tpn = 1 if self.mode == "array" else (self.tasks_per_node or max(self.gpus, 1))
        if self.tpn < 1:
            raise BadInput(f"--tasks-per-node must be >= 1, got {self.tpn}")
        if self.mode == "nodes" and self.gpus and self.tpn != self.gpus:
            raise BadInput(f"--tasks-per-node {self.tpn} with --gpus {self.gpus}: one Lightning rank per GPU needs "
                           f"tasks per node = GPUs per node")
        check_lightning_layout(self.nodes if self.mode == "nodes" else 1, self.tpn, self.extra)
        if not Path(self.python).exists():
            raise BadInput(f"--python {self.python!r} does not exist (the jobs' Python environment)")
        script = self.script_dir / ("array.sbatch" if self.mode == "array" else "nodes.sbatch")
        if not script.is_file():
            raise BadInput(f"job script {str(script)!r} not found (--script-dir)")
        self.out = Path(self.out).resolve()
        self.data = Path(self.data).resolve()
        self.styles = [Path(s).resolve() for s in self.styles]

    def stylize_args(self) -> list[str]:
        """DATA, the styles and --out as `nst stylize` takes them."""
        return ([str(self.data)] + [a for s in self.styles for a in ("--style", str(s))]
                + ["--out", str(self.out)])


def plan(o: SubmitOptions) -> subprocess.CompletedProcess:
    """Write DIR/run.json through `nst stylize --plan-only`; the caller shows its output or its error."""
    plan_cmd = [o.python, "-m", "pipeline.cli", "stylize", *o.stylize_args(), *o.extra, "--plan-only",
                *(["--device", "cuda"] if o.gpus else [])]  # the cost estimate is for the job's devices
    return subprocess.run(plan_cmd, capture_output=True, text=True)


def idle_workers_note(o: SubmitOptions) -> str | None:
    """A warning when the job would start more workers than the plan has shards."""
    n_shards = len(json.loads((o.out / "run.json").read_text())["shards"])
    workers = o.array if o.mode == "array" else o.nodes * o.tpn
    if workers > n_shards:
        return (f"{workers} workers for {n_shards} shard(s); the extra workers only wait "
                f"(lower --shard-size for more shards)")
    return None


def write_job(o: SubmitOptions) -> None:
    """DIR/slurm/job.json: what every worker runs (never --overwrite: only the planner may discard a run)."""
    worker_extra = [a for a in o.extra if a != "--overwrite"]
    forwarded = [a for i, a in enumerate(worker_extra)
                 if a != "--devices" and not a.startswith("--devices=")
                 and not (i > 0 and worker_extra[i - 1] == "--devices")]
    job = {"argv": ["stylize", *o.stylize_args(), *forwarded, "--devices", str(o.tpn)],
           "mode": o.mode, "nodes": o.nodes if o.mode == "nodes" else 1, "tasks_per_node": o.tpn,
           "gpus": o.gpus, "created": time.time()}
    folder = o.out / "slurm"
    with writing(folder, resume=False):  # a full disk or a failed write: one line, exit 6/7/8; nothing submitted
        remove_stale_temps(folder)  # what a killed submit left
        atomic_write_text(folder / "job.json", json.dumps(job, indent=1) + "\n")
        (folder / "logs").mkdir(parents=True, exist_ok=True)


def sbatch_command(o: SubmitOptions) -> list[str]:
    return build_sbatch(o.out, o.mode, nodes=o.nodes, tasks_per_node=o.tpn, gpus=o.gpus, array=o.array,
                        throttle=o.throttle, partition=o.partition, account=o.account, time_limit=o.time_limit,
                        qos=o.qos, cpus_per_task=o.cpus_per_task, mem=o.mem, grace=o.grace, python=o.python,
                        max_timeout_requeues=o.max_timeout_requeues,
                        job_name=o.job_name or f"nst-{o.out.name}", sbatch_args=o.sbatch_args,
                        script_dir=o.script_dir)


def sbatch(o: SubmitOptions, cmd: list[str]) -> str:
    """Submit; returns the job id and appends it to DIR/slurm/submissions.jsonl."""
    try:
        res = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise BadInput("sbatch not found: run nst submit on a SLURM login node")
    if res.returncode != 0:
        raise BadInput(f"sbatch refused the job: {res.stderr.strip()}  (command: {shlex.join(cmd)})")
    job_id = res.stdout.strip().split(";")[0]
    with open(o.out / "slurm" / "submissions.jsonl", "a") as f:
        f.write(json.dumps({"job_id": job_id, "time": time.time(), "sbatch": cmd}) + "\n")
    return job_id


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
