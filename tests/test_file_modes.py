"""Files a run writes follow the umask, like any other tool's (0644 under umask 022)."""

import os
import stat
import subprocess
import sys

import pytest

from pipeline.io.atomic import atomic_write_bytes
from tests.conftest import make_image


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask,expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_write_follows_the_umask(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "x.json", b"{}")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "x.json") == expected
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temporary left behind


@pytest.mark.slow
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
