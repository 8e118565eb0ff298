"""The ordinary ways a disk fails, on real file systems, against the real `nst stylize`.

A small tmpfs fills mid-run; an output folder is a read-only mount; an input disappears
between planning and processing. Each gives its documented exit status and one line
(never a traceback), and a resume ends with `nst verify` clean and every sample once.
Mounting needs root (CAP_SYS_ADMIN): where it is not allowed those tests skip and say so.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dataset_util import TINY, manifest_rows, nst, picture, tar_samples
from pipeline.errors import EXIT_DISK_FULL, EXIT_NOT_WRITABLE, EXIT_OK, EXIT_SAMPLES_FAILED


N_SAMPLES = 8


def _dataset(tmp_path: Path, n: int = N_SAMPLES) -> tuple[Path, Path]:
    data = tmp_path / "data"
    for i in range(n):
        picture(data / f"img{i:02d}.png", (32, 32), seed=i)
    return data, picture(tmp_path / "style.png", seed=77)


def _run(data: Path, style: Path, out: Path, *extra):
    return nst("stylize", data, "--style", style, "--out", out, "--shard-size", 2, "--shard-order", "input",
               *TINY, *extra, timeout=400)


def _mount(*args: str) -> None:
    res = subprocess.run(["mount", *args], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount here (needs root / CAP_SYS_ADMIN): {res.stderr.strip()}")


@pytest.fixture
def tmpfs(tmp_path):
    """tmpfs(name, size): a fresh tmpfs of that size at tmp_path/name, unmounted after the test."""
    points: list[Path] = []

    def mount(name: str, size: str) -> Path:
        disk = tmp_path / name
        disk.mkdir()
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk))
        points.append(disk)
        return disk

    yield mount
    for p in reversed(points):
        subprocess.run(["umount", "-l", str(p)], capture_output=True)


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("nst:")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


def _complete_once(out: Path, statuses: dict | None = None) -> None:
    check = nst("verify", out)
    assert check.returncode == 0, check.stdout + check.stderr
    rows = manifest_rows(out)
    assert sorted(r["index"] for r in rows) == list(range(N_SAMPLES))
    ok = sorted(r["key"] for r in rows if r["status"] == "ok")
    assert sorted(tar_samples(out)) == ok  # every ok sample exactly once, in exactly one shard
    if statuses is not None:
        assert {r["key"]: r["status"] for r in rows if r["status"] != "ok"} == statuses


def test_full_disk_mid_run_one_line_then_resume_after_space_is_freed(tmp_path, tmpfs):
    data, style = _dataset(tmp_path)
    disk = tmpfs("disk", "40k")
    out = disk / "run"
    full = _run(data, style, out)
    assert full.returncode == EXIT_DISK_FULL, full.stderr[-3000:]
    line = _one_error_line(full.stderr)
    assert "no space left on device" in line and f"free space on {disk} and run the same command to resume" in line
    assert (out / "run.json").exists() and len(list((out / "commits").glob("*.json"))) < N_SAMPLES // 2

    _mount("-o", "remount,size=4m", str(disk))
    resumed = _run(data, style, out)
    assert resumed.returncode == EXIT_OK, resumed.stderr[-3000:]
    _complete_once(out, {})


def test_read_only_output_folder_refused_before_any_work(tmp_path, tmpfs):
    data, style = _dataset(tmp_path)
    disk = tmpfs("ro", "4m")
    out = disk / "run"
    first = _run(data, style, out, "--iterations", "2")
    assert first.returncode == EXIT_OK, first.stderr[-3000:]
    (out / "shards").joinpath("stylized-000003.tar").unlink()  # a shard to redo: resume has work to do
    (out / "commits").joinpath("stylized-000003.json").unlink()
    (out / "manifests").joinpath("stylized-000003.jsonl").unlink()
    _mount("-o", "remount,ro", str(disk))

    for target in (out, disk / "new-run"):  # an existing run to resume, and a new one
        refused = _run(data, style, target, "--iterations", "2")
        assert refused.returncode == EXIT_NOT_WRITABLE, refused.stderr[-3000:]
        line = _one_error_line(refused.stderr)
        assert f"cannot write to {target} (read-only file system)" in line, line
    assert not (disk / "new-run").exists()

    _mount("-o", "remount,rw", str(disk))
    again = _run(data, style, out, "--iterations", "2")
    assert again.returncode == EXIT_OK, again.stderr[-3000:]
    _complete_once(out, {})


def test_input_removed_between_plan_and_processing(tmp_path):
    data, style = _dataset(tmp_path)
    out = tmp_path / "run"
    planned = _run(data, style, out, "--plan-only")
    assert planned.returncode == EXIT_OK, planned.stderr[-3000:]
    gone = data / "img05.png"
    kept = gone.read_bytes()
    gone.unlink()

    ran = _run(data, style, out)
    assert ran.returncode == EXIT_SAMPLES_FAILED, ran.stderr[-3000:]
    assert "Traceback" not in ran.stderr
    _complete_once(out, {"00000005": "failed_missing"})
    row = next(r for r in manifest_rows(out) if r["key"] == "00000005")
    assert str(gone) in row["error"]

    again = _run(data, style, out)  # the same command: nothing left to do, the failure stays
    assert again.returncode == EXIT_SAMPLES_FAILED, again.stderr[-3000:]
    gone.write_bytes(kept)
    fixed = _run(data, style, out, "--retry-failed")
    assert fixed.returncode == EXIT_OK, fixed.stderr[-3000:]
    _complete_once(out, {})
