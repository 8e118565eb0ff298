"""A whole run's files follow the umask: 0644 under umask 022, like the tars."""

import os
import stat
import subprocess
import sys

from tests.conftest import make_image


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_run_files_are_0644_under_umask_022(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        make_image((40, 32), i, "content").save(data / f"{i}.png")
    make_image((32, 32), 1, "style").save(tmp_path / "style.png")
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "pipeline.cli", "stylize", str(data), "--style", str(tmp_path / "style.png"),
                        "--out", str(out), "--size", "32", "--iterations", "2", "--no-progress"],
                       capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                       preexec_fn=lambda: os.umask(0o022))
    assert r.returncode == 0, r.stderr[-3000:]
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.relative_to(out).parts[0] for p in files}
    assert {"run.json", "summary.json", "shardindex.json", "manifests", "commits", "shards"} <= names
    assert {str(p.relative_to(out)): oct(_mode(p)) for p in files} == \
        {str(p.relative_to(out)): oct(0o644) for p in files}
