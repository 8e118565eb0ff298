"""RunOptions: how a dataset run is executed, the same for every method, declared once.

Each field carries its command-line flag and help in its metadata: `cli/run_options.py` turns the
fields into the Typer options of every dataset command, `validate` checks them once, and the runner,
the Lightning ranks and the worker read this one object. A new run option is one field here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from pipeline.errors import BadInput

LEASE_TTL = 600.0  # seconds without a heartbeat before a shard lease may be taken over


def flag(help: str, *names: str) -> dict:
    """A field's command-line metadata: its help and, if not the field's own name, its flag names."""
    return {"help": help, "flags": names}


INTERNAL = {"help": None}  # set by the runner, never by a flag


@dataclass
class RunOptions:
    """How a dataset run is executed; validated once, in `validate`."""

    out: Path = field(metadata=flag("Run directory (created; resumed if it exists)", "--out", "-o"))
    shard_size: int = field(default=1000, metadata=flag("Samples per tar shard"))
    devices: int = field(default=1, metadata=flag("Worker processes / devices (DDP on GPUs, gloo on CPU)"))
    device: str = field(default="auto", metadata=flag("cpu, cuda or auto"))
    overwrite: bool = field(default=False, metadata=flag("Discard an existing run in --out", "--overwrite"))
    retry_failed: bool = field(default=False, metadata=flag("Reprocess only the failed samples", "--retry-failed"))
    lease_ttl: float = field(default=LEASE_TTL, metadata=flag(
        "Seconds without heartbeat before a shard lease is taken over"))
    progress: bool = field(default=True, metadata=flag("Show per-worker progress bars"))
    threads: Optional[int] = field(default=None, metadata=flag(
        "Torch threads per CPU worker [default: the cores this process may use (os.sched_getaffinity) "
        "shared among the workers, or OMP_NUM_THREADS if set]"))
    deterministic: bool = field(default=False, metadata=flag(
        "One thread per CPU worker: byte-identical outputs whatever the core count and --devices, slower",
        "--deterministic"))
    overlap: bool = field(default=True, metadata=flag(
        "Decode the next batch and encode/write finished samples in background threads while the device "
        "computes (--no-overlap, or NST_OVERLAP=0: one step after another; same outputs)"))
    hash_inputs: bool = field(default=False, metadata=flag(
        "Plan with every input's sha256 (reads the dataset once before starting); default: size + mtime, "
        "workers hash", "--hash-inputs"))
    retry_id: Optional[str] = field(default=None, metadata=INTERNAL)  # one per --retry-failed, shared by ranks
    poll: float = field(default=2.0, metadata=INTERNAL)  # seconds between looks for a claimable shard

    def validate(self) -> "RunOptions":
        from pipeline.run.execute.threads import resolve_threads

        self.out = Path(self.out)
        if self.devices < 1:
            raise BadInput(f"--devices must be >= 1, got {self.devices}")
        resolve_threads(self.threads, self.devices, self.deterministic)  # refuses --threads 0, or N with --deterministic
        if self.lease_ttl <= 0:
            raise BadInput(f"--lease-ttl must be > 0 seconds, got {self.lease_ttl}")
        return self
