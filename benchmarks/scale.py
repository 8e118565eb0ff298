"""`make bench-scale`: does the run machinery hold up at millions of samples?

Generates tiny inputs once (distinct PNG files in class folders, a CSV that lists
them repeatedly, webdataset tars), then measures each step in a child process
(wall time and that child's own peak RSS from wait4): planning (`nst stylize
--plan-only`), one worker finishing one shard (its peak RSS, and its samples/s at
16 px and 1 evaluation: the pipeline's own overhead), and `nst status`.
Each scale is one JSON record; BENCHMARKS.md renders them as one table.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shlex
import subprocess
import sys
import tarfile
import time
from pathlib import Path

# the targets (same machine class); printed next to each figure
TARGETS = {"plan_s_1m": 30.0, "plan_rss_mb_1m": 1024.0, "status_s": 1.0, "plan_s_10m": 300.0,
           "plan_rss_mb_10m": 2048.0, "worker_rss_growth": 0.10, "samples_per_s": 100.0}
TEMPLATES = 64          # distinct picture contents; file i holds template i % 64
FILES_PER_DIR = 1000    # an ImageNet-like tree: class folders of 1000 files
SQUARE = [t for t in range(TEMPLATES) if t % 3 == 0]  # the 32x32 templates: the ones that pass at 16 px
WORKER_SHARDS = 5       # the worker's samples/s is the median over this many shards (the same shard varies 80-114/s here)
TINY = ["--size", "16", "--iterations", "1", "--device", "cpu", "--no-progress"]


def _pictures() -> list[bytes]:
    """TEMPLATES small PNGs of three shapes (so size grouping has more than one group)."""
    import numpy as np
    from PIL import Image

    out = []
    rng = np.random.default_rng(0)
    for t in range(TEMPLATES):
        w, h = ((32, 32), (32, 24), (24, 32))[t % 3]
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), "RGB").save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def make_files(root: Path, n: int) -> Path:
    """root/files/c{dir}/{i}.png for i < n (kept between runs: a marker says it is complete)."""
    done = root / f".files-{n}"
    tree = root / "files"
    if done.exists():
        return tree
    pics = _pictures()
    for i in range(n):
        d = tree / f"c{i // FILES_PER_DIR:05d}"
        if i % FILES_PER_DIR == 0:
            d.mkdir(parents=True, exist_ok=True)
        p = d / f"{i:08d}.png"
        if not p.exists():
            p.write_bytes(pics[i % TEMPLATES])
    done.touch()
    return tree


def make_list(root: Path, n_files: int, rows: int) -> Path:
    """A CSV of `rows` rows cycling over the square files among the first n_files (relative
    paths, a label column): every sample succeeds at 16 px, so samples/s is the ok path's."""
    path = root / f"list-square{n_files}x{rows}.csv"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    square = [i for i in range(n_files) if i % TEMPLATES in SQUARE]
    with open(tmp, "w") as f:
        f.write("path,label\n")
        for r in range(rows):
            i = square[r % len(square)]
            f.write(f"files/c{i // FILES_PER_DIR:05d}/{i:08d}.png,{i // FILES_PER_DIR}\n")
    os.replace(tmp, path)
    return path


def make_tars(root: Path, n: int, per_tar: int = 1000) -> Path:
    """root/tars/{k}.tar with n samples: {key}.png, {key}.json, {key}.cls (img2dataset's layout)."""
    done = root / f".tars-square-{n}"
    d = root / "tars"
    if done.exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    pics = _pictures()
    for k in range((n + per_tar - 1) // per_tar):
        with tarfile.open(d / f"{k:05d}.tar", "w") as tf:
            for i in range(k * per_tar, min(n, (k + 1) * per_tar)):
                key = f"{i:09d}"
                for ext, data in (("png", pics[SQUARE[i % len(SQUARE)]]), ("json", json.dumps({"i": i}).encode()),
                                  ("cls", str(i % 10).encode())):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
    done.touch()
    return d


def measured(cmd: list[str], env: dict) -> dict:
    """Run cmd to completion: wall seconds, the child's peak RSS (MB), exit status, last stderr line."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()  # peaks come from the child's own report (measure_child, worker)
    wall = time.perf_counter() - t
    info = {"seconds": round(wall, 2), "rc": proc.returncode, "command": shlex.join(cmd)}
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("SCALE-MEASURE "):
            info.update(json.loads(line[len("SCALE-MEASURE "):]))
    tail = err.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0:
        info["error"] = tail[-1] if tail else f"exit {proc.returncode}"
    return info


def measure_child(argv: list[str]) -> int:
    """`python benchmarks/scale.py run CMD...`: run CMD, print its own wall time and peak RSS."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    rc = os.waitstatus_to_exitcode(status)
    sys.stderr.write(err[-2000:])
    print("SCALE-MEASURE " + json.dumps({"seconds": round(time.perf_counter() - t, 2),
                                         "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
                                         "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}))
    return rc


def worker_shards(out: str, data: str, style: str, shard_order: str) -> int:
    """One worker process as `nst stylize` starts it, stopped after its first WORKER_SHARDS shards:
    prints the median samples/s of those shards (setup excluded; shards whose samples all
    succeeded, where there are any: a failed sample costs less) and the process's peak RSS."""
    import resource
    import statistics

    from scale_api import first_shards  # beside this script

    shards, threads = first_shards(out, data, style, shard_order, WORKER_SHARDS)
    rates = [s["samples"] / s["seconds"] for s in shards if s["samples"] and s["ok"] == s["samples"]] or \
        [s["samples"] / s["seconds"] for s in shards if s["samples"]]
    print("SCALE-MEASURE " + json.dumps({
        "samples": shards[0]["samples"], "shard_seconds": round(shards[0]["seconds"], 2),
        "samples_per_s": round(statistics.median(rates), 1), "shard_rates": [round(r, 1) for r in rates],
        "threads": threads, "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
    return 0


def _nst() -> list[str]:
    return [sys.executable, "-m", "pipeline.cli"]


def _wrap(cmd: list[str]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "run", *cmd]


def bench_case(name: str, data: Path, style: Path, out: Path, env: dict, shard_order: str,
               worker: bool, extra: list[str]) -> dict:
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    plan_cmd = [*_nst(), "stylize", str(data), "--style", str(style), "--out", str(out), *TINY,
                "--shard-order", shard_order, "--plan-only", *extra]
    row = {"case": name, "shard_order": shard_order}
    plan = measured(_wrap(plan_cmd), env)
    row["plan"] = plan
    row["run_dir_mb"] = round(sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6, 1)
    if plan["rc"] != 0:
        return row
    if worker:  # with the threads a worker takes by default (this machine's cores), as `nst stylize` runs it
        worker_env = {k: v for k, v in env.items() if k != "OMP_NUM_THREADS"}
        row["worker"] = measured([sys.executable, str(Path(__file__).resolve()), "worker", str(out), str(data),
                                  str(style), shard_order, *extra], worker_env)
    row["status"] = measured(_wrap([*_nst(), "status", str(out)]), env)
    return row


def machine() -> dict:
    from pipeline.bench.report import cpu_model

    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "load_start": round(os.getloadavg()[0], 2)}


def run(scale: int, work: Path, cases: list[str], rows_10m: int, results: Path | None,
        markdown: Path | None = None, before: bool = False, workers: bool = True) -> dict:
    """One scale: `scale` samples; returns (and saves) the record. workers=False: plan and
    status only (a record of planning alone, e.g. the two shard orders side by side)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}  # planning and status: no torch
    work.mkdir(parents=True, exist_ok=True)
    style = work / "style.png"
    if not style.exists():
        style.write_bytes(_pictures()[1])
    record = {"kind": "nst-bench-scale", "scale": scale, "machine": machine(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": "python benchmarks/scale.py " + shlex.join(sys.argv[1:]), "rows": []}
    if before:
        record["before"] = True
    n_files = min(scale, 100_000)  # above 100k, a list repeats files (the 1M case)
    make_files(work, n_files)
    for case in cases:
        if case == "files" and scale <= 100_000:
            data = work / "files" if scale == n_files else None
            row = bench_case(f"{scale:,} files (directory)", data, style, work / "out-files", env, "size",
                             workers, [])
        elif case in ("list", "list-size"):  # list-size: the default order, what a user types (issue 28)
            data = make_list(work, n_files, scale)
            order = "size" if case == "list-size" else "input"
            row = bench_case(f"{scale:,} rows (CSV cycling over the square files among {n_files:,})", data, style,
                             work / f"out-{case}", env, order, workers and case == "list", [])
        elif case == "tars":
            data = make_tars(work, scale)
            row = bench_case(f"{scale:,} samples (webdataset tars)", data, style, work / "out-tars", env,
                             "input", workers, [])
        else:
            continue
        print(json.dumps(row), flush=True)
        record["rows"].append(row)
    if rows_10m:
        data = make_list(work, n_files, rows_10m)
        row = bench_case(f"{rows_10m:,} rows (CSV cycling over the square files among {n_files:,})", data, style,
                         work / "out-10m", env,
                         "input", False, [])
        print(json.dumps(row), flush=True)
        record["rows"].append(row)
    record["machine"]["load_end"] = round(os.getloadavg()[0], 2)
    from pipeline.bench import scale_report

    print(scale_report.text(record))
    if results is not None:
        from pipeline.bench.report import render_benchmarks, save_result

        save_result(record, results)
        if markdown is not None:
            render_benchmarks(out=markdown)
    return record


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        return measure_child(argv[1:])
    if argv[:1] == ["worker"]:
        return worker_shards(*argv[1:5])
    p = argparse.ArgumentParser(prog="python benchmarks/scale.py", description=__doc__)
    p.add_argument("--scale", type=int, default=100_000, help="samples (above 100k: a CSV repeating 100k files)")
    p.add_argument("--work", type=Path, default=Path("/tmp/nst-bench-scale"), help="inputs + runs (kept)")
    p.add_argument("--cases", default="files,list,tars",
                   help="files (a directory, size order), list (a CSV, input order), list-size (the same CSV in "
                        "the default size order: plan and status only), tars")
    p.add_argument("--rows-10m", type=int, default=0, help="also plan a list of this many rows")
    p.add_argument("--save", type=Path, default=None, help="write the JSON record here")
    p.add_argument("--markdown", type=Path, default=None, help="then re-render this BENCHMARKS.md")
    p.add_argument("--before", action="store_true", help="mark the record as the code before a change")
    p.add_argument("--no-worker", action="store_true", help="plan and status only: no worker runs a shard")
    a = p.parse_args(argv)
    run(a.scale, a.work, [c.strip() for c in a.cases.split(",")], a.rows_10m, a.save, a.markdown, a.before,
        workers=not a.no_worker)
    return 0


if __name__ == "__main__":
    sys.exit(main())
