"""How many torch threads a CPU worker uses.

By default a worker uses the cores this process may run on (its CPU affinity,
which taskset, cgroups and SLURM's --cpus-per-task set), shared among the CPU
workers started on this machine; an OMP_NUM_THREADS in the environment is taken
as the user's per-worker choice. Outputs then depend on the thread count (the
order of floating-point reductions changes), so `--deterministic` pins one
thread per worker: byte-identical outputs whatever the core count and
--devices, at the cost of the other cores.
"""

from __future__ import annotations

import os

from pipeline.errors import BadInput


def allowed_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def resolve_threads(threads: int | None, workers: int = 1, deterministic: bool = False) -> int:
    """--threads if given, 1 under --deterministic, else OMP_NUM_THREADS if set, else this machine's
    allowed cores / its CPU workers."""
    if threads is not None and threads < 1:
        raise BadInput(f"--threads must be >= 1, got {threads}")
    if deterministic:
        if threads not in (None, 1):
            raise BadInput(f"--deterministic runs one thread per CPU worker; it cannot be combined with "
                           f"--threads {threads}")
        return 1
    if threads is not None:
        return threads
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, allowed_cores() // max(1, workers))
