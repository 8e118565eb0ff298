"""Ctrl-C and SIGTERM as a person, `timeout`, systemd or Kubernetes send them, to the real `nst`.

Each run is a real process (1 worker, or 2 Lightning ranks over gloo) stopped once some
samples are durable. It must exit 130/143 with one line and no traceback, before the run
is done, leave no rank running, and the same command must then finish the run with
`nst verify` clean and every sample exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dataset_util import ENV, NST, TINY, manifest_rows, nst, picture, tar_samples
from pipeline.errors import EXIT_OK


N_SAMPLES = 6


def _durable(out: Path) -> int:
    """Samples journaled or committed so far."""
    if not out.exists():
        return 0
    n = sum(len(p.read_text().splitlines()) for p in (out / "manifests").glob("*.jsonl"))
    return n + sum(len(p.read_bytes().splitlines()) for p in (out / "work").glob("*.journal"))


def _dataset(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    for i in range(N_SAMPLES):
        picture(data / f"img{i:02d}.png", (32, 32), seed=i)
    return data, picture(tmp_path / "style.png", seed=77)


def _stylize_cmd(data: Path, style: Path, out: Path, devices: int) -> list[str]:
    return [NST, "stylize", data, "--style", style, "--out", out, "--devices", devices, "--shard-size", 2,
            *TINY, "--iterations", 20, "--set", "batch_size=1"]


def _start_and_wait(cmd: list, out: Path, at_least: int = 1) -> subprocess.Popen:
    """Start `cmd` in its own process group; return once `at_least` samples are durable."""
    proc = subprocess.Popen([str(c) for c in cmd], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and _durable(out) < at_least:
        time.sleep(0.05)
    assert proc.poll() is None, f"finished before the signal: {proc.stderr.read()[-2000:]}"
    assert _durable(out) >= at_least, "no progress within 240 s"
    return proc


def _processes_on(out: Path) -> list[str]:
    """Command lines of live processes working on `out` (an orphaned rank would show here)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and str(out).encode() in argv:
            found.append(b" ".join(argv).decode(errors="replace"))
    return found


def _no_rank_left(out: Path) -> None:
    deadline = time.time() + 10
    while _processes_on(out) and time.time() < deadline:
        time.sleep(0.2)
    assert _processes_on(out) == [], _processes_on(out)


def _resume_and_check(cmd: list, out: Path) -> None:
    final = nst(*cmd[1:], timeout=400)
    assert final.returncode == EXIT_OK, final.stderr[-3000:]
    check = nst("verify", out)
    assert check.returncode == 0, check.stdout + check.stderr
    rows = manifest_rows(out)
    assert sorted(r["index"] for r in rows) == list(range(N_SAMPLES))
    assert all(r["status"] == "ok" for r in rows)
    assert sorted(tar_samples(out)) == sorted(r["key"] for r in rows)  # each key once, in one shard
    assert not list((out / "leases").glob("*.lease"))


@pytest.mark.parametrize("devices,sig,to_group", [
    (1, signal.SIGINT, True),    # Ctrl-C in a terminal reaches the whole process group
    (2, signal.SIGINT, True),
    (1, signal.SIGTERM, False),  # timeout(1), Kubernetes: TERM to the main process only
    (2, signal.SIGTERM, False),  # rank 0 must stop rank 1 itself
])
def test_first_signal_stops_cleanly_and_resume_finishes(tmp_path, devices, sig, to_group):
    data, style = _dataset(tmp_path)
    out = tmp_path / "run"
    cmd = _stylize_cmd(data, style, out, devices)
    proc = _start_and_wait(cmd, out)
    (os.killpg if to_group else os.kill)(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    name = signal.Signals(sig).name
    lines = [ln for ln in err.splitlines() if ln.startswith("nst:")]
    assert len(lines) == 1 and lines[0].startswith(f"nst: stopped by {name}: "), err[-3000:]
    done, planned = lines[0].split(": ")[2].split(" done")[0].split("/")
    assert int(planned) == N_SAMPLES and 1 <= int(done) < N_SAMPLES, lines[0]
    assert lines[0].endswith("run the same command to resume")
    assert int(done) == len(manifest_rows(out)) + sum(
        len(p.read_bytes().splitlines()) for p in (out / "work").glob("*.journal"))
    _no_rank_left(out)
    assert not list((out / "leases").glob("*.lease")), "a stopped worker kept its lease"
    _resume_and_check(cmd, out)


def test_second_ctrl_c_aborts_at_once_and_resume_finishes(tmp_path):
    data, style = _dataset(tmp_path)
    out = tmp_path / "run"
    cmd = _stylize_cmd(data, style, out, 2)
    proc = _start_and_wait(cmd, out)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode in (-signal.SIGINT, 128 + signal.SIGINT), err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    _no_rank_left(out)
    _resume_and_check(cmd, out)


def test_one_removes_its_partial_output_on_ctrl_c(tmp_path):
    content = picture(tmp_path / "content.png", (48, 40), seed=1)
    style = picture(tmp_path / "style.png", seed=77)
    out = tmp_path / "out" / "result.png"
    proc = subprocess.Popen([NST, "one", str(content), str(style), "-o", str(out), "--size", "48",
                             "--iterations", "2000", "--save-every", "2", "--device", "cpu"],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not list(out.parent.glob("result.*.png")):
        time.sleep(0.05)
    assert proc.poll() is None and list(out.parent.glob("result.*.png")), "no snapshot was written"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("nst:")]
    assert lines == [f"nst: stopped by SIGINT: removed the partial output {out}"], err[-3000:]
    assert list(out.parent.iterdir()) == []  # no image, no record, no snapshot
