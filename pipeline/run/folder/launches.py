"""DIR/launches.jsonl: one line per worker start (command line, devices, host, time).

run.json is the run's identity and is written once; how and where it was launched
(the command, the preset named on it, 1 GPU today and 4 tomorrow) is not identity,
so each start appends a line here instead. `nst report` shows them in its header.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path

LAUNCHES = "launches.jsonl"


def record_launch(root: Path, devices: int, accelerator: str) -> None:
    """Append this start (one short O_APPEND write: lines from concurrent workers do not interleave)."""
    line = {"at": round(time.time(), 3), "command": shlex.join(["nst", *sys.argv[1:]]),
            "host": socket.gethostname(), "pid": os.getpid(), "devices": devices, "accelerator": accelerator}
    slurm = {k: os.environ[k] for k in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID")
             if k in os.environ}
    if slurm:
        line["slurm"] = slurm
    fd = os.open(Path(root) / LAUNCHES, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)


def read_launches(root: Path) -> list[dict]:
    """Every complete line (a torn last line is skipped)."""
    out = []
    try:
        text = (Path(root) / LAUNCHES).read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
