"""Run a Worker on one or several devices through Lightning's `Trainer.predict`.

Each rank iterates over a map-style dataset of shard ids (no DistributedSampler:
`use_distributed_sampler=False`, so nothing is padded or duplicated) and claims
shards through lease files; a rank that runs out of claimable shards waits in
`on_predict_end` until the others have committed theirs, so Lightning's own
collectives never wait on a long shard. Hardware choices live here only.
"""

from __future__ import annotations

import logging
import os
import warnings
from datetime import timedelta

import torch
from torch.utils.data import DataLoader, Dataset

from pipeline.run.folder.plan import RunPlan
from pipeline.run.execute.signals import reassert
from pipeline.run.task import Task
from pipeline.run.execute.options import RunOptions
from pipeline.run.execute.worker import Worker


class ShardIds(Dataset):
    """Map-style dataset: item i is the i-th shard id; every rank sees all of them."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def _collate(batch):
    return batch


def _module(plan: RunPlan, task: Task, opts: RunOptions, threads: int):
    import pytorch_lightning as pl

    class ShardRunner(pl.LightningModule):
        """predict_step(i) = try to claim and finish this rank's i-th shard."""

        def __init__(self):
            super().__init__()
            self.worker: Worker | None = None

        def on_predict_start(self) -> None:
            reassert()  # Lightning's Trainer has just replaced our SIGTERM handler with its own
            world = self.trainer.world_size
            if self.device.type == "cpu":
                # run/execute/threads.py: the allowed cores by default, one under --deterministic
                torch.set_num_threads(max(1, threads))
            device = str(self.device) if self.device.type != "cuda" else f"cuda:{self.device.index or 0}"
            self.worker = Worker(plan, task, opts, rank=self.global_rank, world=world, device=device)

        def predict_step(self, batch, batch_idx):
            order = self.worker.shard_order()
            with torch.enable_grad():  # Lightning predicts under no_grad; the optimisation needs grads
                for i in batch:
                    self.worker.try_shard(order[i])
            return None

        def on_predict_end(self) -> None:
            with torch.enable_grad():
                self.worker.drain(wait=True)

    return ShardRunner()


def make_trainer(devices: int, accelerator: str, root):
    import pytorch_lightning as pl
    from pytorch_lightning.plugins.environments import SLURMEnvironment
    from pytorch_lightning.strategies import DDPStrategy

    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*srun.*", ".*LeafSpec.*", ".*predict returned None.*", ".*num_workers.*"):
        warnings.filterwarnings("ignore", message=pattern)
    plugins = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else None
    strategy = "auto"
    if devices > 1 or (plugins and int(os.environ.get("SLURM_NTASKS", "1")) > 1):
        strategy = DDPStrategy(process_group_backend="nccl" if accelerator == "gpu" else "gloo",
                               timeout=timedelta(days=7))
    root = os.fspath(root)
    # set by `nst slurm-worker` from the submitted --nodes; Lightning checks it against SLURM_NNODES
    num_nodes = int(os.environ.get("NST_NUM_NODES", "1"))
    return pl.Trainer(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy,
                      plugins=plugins,
                      inference_mode=False, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
                      default_root_dir=os.path.join(root, "work", "lightning"))


def run_predict(plan: RunPlan, task: Task, opts: RunOptions, accelerator: str,
                threads: int = 1) -> tuple[int, list[int]]:
    """Process the run on opts.devices ranks; returns this process's global rank and the exit
    statuses of the ranks it started (rank 0 of a Lightning launch; none elsewhere)."""
    trainer = make_trainer(opts.devices, accelerator, plan.root)
    module = _module(plan, task, opts, threads)
    loader = DataLoader(ShardIds(len(plan.shards)), batch_size=1, shuffle=False, num_workers=0,
                        collate_fn=_collate)
    trainer.predict(module, dataloaders=loader, return_predictions=False)
    return trainer.global_rank, _wait_for_ranks(trainer)


def _wait_for_ranks(trainer, timeout: float = 120.0) -> list[int]:
    """In rank 0: wait until the ranks it started have exited, so the command never ends
    (stopped or finished) with a rank still running; one that hangs is killed."""
    import subprocess

    codes = []
    for proc in getattr(trainer.strategy.launcher, "procs", None) or []:
        try:
            codes.append(proc.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    return codes
