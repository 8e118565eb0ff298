"""A process-wide 'stop taking work' flag.

Signal handlers (SLURM preemption: USR2, SIGTERM) set it; worker loops check
`stop_requested()` between samples, finish or durably abandon the in-flight
sample, release their lease and exit with EXIT_PREEMPTED. Kept free of any
SLURM knowledge so the runner does not depend on the cluster layer.
"""

from __future__ import annotations

import threading

_STOP = threading.Event()
_REASON: list[str] = []


def request_stop(reason: str = "signal") -> None:
    _REASON.append(reason)
    _STOP.set()


def stop_requested() -> bool:
    return _STOP.is_set()


def stop_reason() -> str | None:
    return _REASON[-1] if _REASON else None


def reset() -> None:
    """For tests and for a process that runs several jobs in a row."""
    _STOP.clear()
    _REASON.clear()
