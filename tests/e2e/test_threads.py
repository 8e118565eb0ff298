"""A CPU worker uses the cores it may run on; --threads and --deterministic say otherwise."""

import json
import os
import subprocess

from dataset_util import NST, TINY, manifest_rows, picture


def _run(tmp_path, name, *args, cores=None):
    """nst stylize of one picture (no OMP_NUM_THREADS: the default is what is under test); the
    (exit status, stderr, threads the worker recorded)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = tmp_path / name
    r = subprocess.run([NST, "stylize", tmp_path / "data", "--style", tmp_path / "style.png", "--out", out, *TINY,
                        "--iterations", "2", *args], capture_output=True, text=True, env=env, timeout=300,
                       preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None)
    threads = [row["worker"]["threads"] for row in manifest_rows(out)] if (out / "run.json").exists() else []
    return r.returncode, r.stderr, threads


def test_threads_follow_the_allowed_cores(tmp_path):
    picture(tmp_path / "data" / "a.png")
    picture(tmp_path / "style.png", seed=3)
    allowed = os.sched_getaffinity(0)
    code, err, threads = _run(tmp_path, "all")
    assert code == 0, err[-2000:]
    assert threads == [len(allowed)]
    code, err, threads = _run(tmp_path, "one-core", cores={min(allowed)})
    assert code == 0 and threads == [1], err[-2000:]
    code, err, threads = _run(tmp_path, "three", "--threads", "3")
    assert code == 0 and threads == [3], err[-2000:]
    code, err, threads = _run(tmp_path, "det", "--deterministic")
    assert code == 0 and threads == [1], err[-2000:]


def test_deterministic_with_more_threads_is_refused(tmp_path):
    picture(tmp_path / "data" / "a.png")
    picture(tmp_path / "style.png", seed=3)
    code, err, threads = _run(tmp_path, "both", "--deterministic", "--threads", "2")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "--deterministic runs one thread per CPU worker" in lines[0], err
    assert not (tmp_path / "both" / "run.json").exists()
