"""Who this process is in SLURM, read from the job's environment (a leaf: imports nothing of pipeline).

Leases record these ids so `nst status` can name the SLURM worker behind a shard;
slurm/requeue.py uses them to requeue the right job or array task.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class SlurmTask:
    """This process's place in SLURM, read from the environment of a job or step."""

    job_id: str
    array_job_id: str | None
    array_task_id: str | None
    restart_count: int
    procid: int
    ntasks: int
    node: str

    @classmethod
    def from_env(cls, env: dict | None = None) -> "SlurmTask | None":
        env = os.environ if env is None else env
        job_id = env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID")
        if not job_id:
            return None
        return cls(
            job_id=job_id,
            array_job_id=env.get("SLURM_ARRAY_JOB_ID"),
            array_task_id=env.get("SLURM_ARRAY_TASK_ID"),
            restart_count=int(env.get("SLURM_RESTART_COUNT") or 0),
            procid=int(env.get("SLURM_PROCID") or 0),
            ntasks=int(env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS") or 1),
            node=env.get("SLURMD_NODENAME") or socket.gethostname(),
        )

    @property
    def requeue_id(self) -> str:
        """What `scontrol requeue` takes: ARRAYJOB_TASK for an array task, else the job id."""
        if self.array_job_id and self.array_task_id is not None:
            return f"{self.array_job_id}_{self.array_task_id}"
        return self.job_id

    def holder_info(self) -> dict:
        """The fields a lease records so `nst status` can name the SLURM worker behind it."""
        info = {"slurm_job_id": self.job_id, "slurm_restart_count": self.restart_count,
                "slurm_procid": self.procid, "slurm_node": self.node}
        if self.array_job_id and self.array_task_id is not None:
            info["slurm_array_job_id"] = self.array_job_id
            info["slurm_array_task_id"] = self.array_task_id
        return info


def holder_info(env: dict | None = None) -> dict:
    """SLURM ids for a lease's holder record; empty outside SLURM."""
    task = SlurmTask.from_env(env)
    return task.holder_info() if task else {}


def worker_label(info: dict) -> str:
    """`job 123_4 (rank 0, restart 1)` from a holder record, or '' when it holds no SLURM ids."""
    if not info.get("slurm_job_id"):
        return ""
    if info.get("slurm_array_job_id"):
        label = f"{info['slurm_array_job_id']}_{info['slurm_array_task_id']}"
    else:
        label = str(info["slurm_job_id"])
    extra = []
    if int(info.get("slurm_procid") or 0):
        extra.append(f"rank {info['slurm_procid']}")
    if int(info.get("slurm_restart_count") or 0):
        extra.append(f"restart {info['slurm_restart_count']}")
    return label + (f" ({', '.join(extra)})" if extra else "")
