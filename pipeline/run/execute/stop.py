"""A 'stop taking work' flag, shared by the ranks of one command.

Signal handlers (Ctrl-C/SIGTERM: `pipeline.run.execute.signals`; SLURM preemption: USR2, TERM)
and a worker whose output cannot be written (a full disk) set it with a reason and the
exit status it means; worker loops check `stop_requested()` between batches, finish or
durably abandon the batch in flight, release their lease and return. Kept free of any
SLURM knowledge so the runner does not depend on the cluster layer.

The rank processes Lightning starts share the flag through a small append-only file (the
channel) that the starting process names in NST_STOP_CHANNEL: a signal that only rank 0
gets (`timeout`, Kubernetes) or a full disk that only rank 1 sees stops every rank, and
rank 0 reports the reason. Ranks started by srun (SLURM) each get the signal themselves.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import uuid
from dataclasses import asdict, dataclass

from pipeline.errors import EXIT_PREEMPTED

CHANNEL_ENV = "NST_STOP_CHANNEL"
LAUNCHER_ENV = "NST_LAUNCHER_PID"


@dataclass(frozen=True)
class StopReason:
    name: str                    # SIGINT, SIGTERM, SIGUSR2, or "output error"
    exit_code: int
    message: str | None = None   # set for errors: the one line the command ends with


_STOP = threading.Event()
_REASONS: list[StopReason] = []
_CHANNEL = {"read": 0}


def request_stop(reason: str = "signal", exit_code: int = EXIT_PREEMPTED, message: str | None = None) -> None:
    """Stop taking work (safe to call from a signal handler)."""
    stop = StopReason(reason, exit_code, message)
    _REASONS.append(stop)
    _STOP.set()
    path = os.environ.get(CHANNEL_ENV)
    if path:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, json.dumps(asdict(stop)).encode() + b"\n")
            finally:
                os.close(fd)
        except OSError:  # the flag above still stops this rank
            pass


def _read_channel() -> None:
    path = os.environ.get(CHANNEL_ENV)
    if not path:
        return
    try:
        if os.stat(path).st_size <= _CHANNEL["read"]:
            return
        with open(path, "rb") as f:
            f.seek(_CHANNEL["read"])
            data = f.read()
    except OSError:
        return
    complete = data[:data.rfind(b"\n") + 1]
    _CHANNEL["read"] += len(complete)
    for line in complete.splitlines():
        try:
            stop = StopReason(**json.loads(line))
        except (ValueError, TypeError):
            continue
        if stop not in _REASONS:
            _REASONS.append(stop)
        _STOP.set()


def stop_requested() -> bool:
    if not _STOP.is_set():
        _read_channel()
    return _STOP.is_set()


def stop_cause() -> StopReason | None:
    """What the command reports: an error before a signal (it needs the user to act),
    else the first signal."""
    _read_channel()
    errors = [r for r in _REASONS if r.message]
    return (errors or _REASONS or [None])[0]


def open_channel() -> bool:
    """In the process that starts the ranks: name a fresh channel for them to inherit.
    True when this process owns it (must `close_channel`), False in a rank it started."""
    if os.environ.get(CHANNEL_ENV):
        return False
    os.environ[CHANNEL_ENV] = os.path.join(tempfile.gettempdir(), f"nst-stop-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.environ[LAUNCHER_ENV] = str(os.getpid())
    _CHANNEL["read"] = 0
    return True


def close_channel() -> None:
    path = os.environ.pop(CHANNEL_ENV, None)
    os.environ.pop(LAUNCHER_ENV, None)
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def reset() -> None:
    """For tests and for a process that runs several jobs in a row."""
    _STOP.clear()
    _REASONS.clear()
    _CHANNEL["read"] = 0
