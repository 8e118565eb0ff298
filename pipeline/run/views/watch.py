"""`nst status RUN --watch`: one live line across all workers until the run completes.

It re-reads the run's files every few seconds (read-only, like `nst status`), so it
follows workers on any host that share the directory.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pipeline.run.folder.plan import load_run
from pipeline.progress import format_duration
from pipeline.run.views.status import summarize
from pipeline.run.execute.options import LEASE_TTL


def status_line(summary: dict) -> str:
    done = summary["ok"] + summary["failed"]
    rate = summary["images_per_hour"]
    leases = summary["active_leases"]
    stale = sum(1 for lease in leases if lease.get("stale"))
    eta = "done" if summary["complete"] else format_duration(summary["eta_seconds"])
    return (f"{summary['task']}  {done}/{summary['planned']} done ({summary['ok']} ok, {summary['failed']} failed)  "
            f"shards {summary['shards_done']}/{summary['shards_total']}  "
            f"rate {f'{rate:.1f}/h' if rate else '-'}  ETA {eta}  "
            f"workers {len(leases) - stale}{f' ({stale} STALE lease(s))' if stale else ''}")


def watch_until_complete(root: Path, interval: float = 2.0, lease_ttl: float = LEASE_TTL, stream=None) -> dict:
    """Print the line every `interval` seconds (in place on a terminal); returns the final summary."""
    stream = stream or sys.stdout
    tty = stream.isatty()
    width = 0
    plan = load_run(root)
    while True:
        summary = summarize(plan, lease_ttl)
        line = status_line(summary)
        if tty:
            stream.write("\r" + line.ljust(width))
            width = len(line)
        else:
            stream.write(line + "\n")
        stream.flush()
        if summary["complete"]:
            if tty:
                stream.write("\n")
            return summary
        time.sleep(interval)
