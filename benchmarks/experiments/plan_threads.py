"""Issue 28: the size-ordered plan's header pass with one thread or a pool, in one process.

Not part of the package and not a test: the measurement behind docs/scale.md's "The default
order at a million rows". It plans DATA as `nst stylize --shard-order ORDER` does (the real
stylize task, `plan_rows` with its shard key) with THREADS describing rows, writes no files,
and prints the process's CPU time for the plan and its peak RSS.

    PYTHONPATH=. .venv/bin/python benchmarks/experiments/plan_threads.py /tmp/nst-bench-scale/files size 8
    PYTHONPATH=. .venv/bin/python benchmarks/experiments/plan_threads.py \\
        /tmp/nst-bench-scale/list-square100000x1000000.csv size 1

DATA: the inputs `make bench-scale` generates into SCALE_WORK; STYLE defaults to its style.png.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from pipeline.io.headers import HEADERS
from pipeline.run.folder.plan import _group_of, _KeyCheck, _rows
from pipeline.run.folder.stream_plan import plan_rows
from pipeline.tasks.registry import method_config, method_task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data")
    p.add_argument("order", choices=("size", "input"))
    p.add_argument("threads", type=int)
    p.add_argument("--style", default=None, help="default: style.png beside DATA")
    a = p.parse_args()
    style = a.style or str(Path(a.data).parent / "style.png")
    cfg = method_config("stylize", None, {"size": 16, "iterations": 1, "seed": None}, [])
    task = method_task("stylize", cfg, data=a.data, styles=[style], shard_order=a.order, device="cpu")
    start = time.process_time()
    res = plan_rows(_KeyCheck()(_rows(task, task.seed())), 1000, "x", lambda shard, rows: None,
                    group_of=_group_of(task), threads=a.threads)
    print(f"{a.order} order, {a.threads} threads: {res.total} rows, {len(res.shards)} shards, "
          f"{time.process_time() - start:.2f} s CPU, {HEADERS.reads} header reads, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
