"""Output-side OSErrors become one line that names the folder and the remedy, with the
documented exit status; an unwritable folder is found before any work."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pipeline.errors import EXIT_DISK_FULL, EXIT_IO_ERROR, EXIT_NOT_WRITABLE
from pipeline.io.oserrors import check_writable, mount_point, output_error


@pytest.mark.parametrize("code,status,words", [
    (errno.ENOSPC, EXIT_DISK_FULL, "no space left on device writing {out}: free space on {mount} and run the same "
                                   "command to resume"),
    (errno.EDQUOT, EXIT_DISK_FULL, "disk quota exceeded writing {out}: free space on {mount}"),
    (errno.EROFS, EXIT_NOT_WRITABLE, "cannot write to {out} (read-only file system)"),
    (errno.EACCES, EXIT_NOT_WRITABLE, "cannot write to {out} (permission denied)"),
    (errno.EIO, EXIT_IO_ERROR, "I/O error writing {out}: Input/output error; check the disk"),
])
def test_each_errno_has_its_line_and_status(tmp_path, code, status, words):
    out = tmp_path / "run"
    err = output_error(OSError(code, os.strerror(code)), out)
    assert err.exit_code == status
    assert words.format(out=out, mount=mount_point(out)) in str(err)
    assert "\n" not in str(err)


def test_mount_point_of_a_folder_still_to_be_created(tmp_path):
    assert mount_point(tmp_path / "a" / "b") == mount_point(tmp_path)
    assert os.path.ismount(mount_point(tmp_path))


def test_writable_folder_passes_and_leaves_nothing(tmp_path):
    check_writable(tmp_path / "new" / "run")
    check_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_folder_without_write_permission_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        with pytest.raises(Exception) as info:
            check_writable(locked / "run")
        assert info.value.exit_code == EXIT_NOT_WRITABLE and "permission denied" in str(info.value)
    finally:
        locked.chmod(0o755)
