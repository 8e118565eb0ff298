"""Files a run writes follow the umask, like any other tool's (0644 under umask 022)."""

import os
import stat

import pytest

from pipeline.io.atomic import atomic_write_bytes


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
