"""Output-side I/O failures as one line that says what to do, with their own exit status.

A full disk or a read-only output folder is not a bug and not bad input: the run itself is
fine (every durable sample stays, resume continues it), the user has to free space or pick
another folder. `output_error` turns the OSError of a failed write into that one line;
`check_writable` finds an unwritable output folder before any work is done. Input-side
errors never come here: a missing or unreadable input is that sample's failed row.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from pipeline.errors import EXIT_DISK_FULL, EXIT_IO_ERROR, EXIT_NOT_WRITABLE, NSTError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


class OutputError(NSTError):
    """Writing the run's output failed; the message names the folder and the remedy."""


def mount_point(path: Path) -> Path:
    """The mount point holding `path` (the thing a user frees space on or remounts)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def is_output_error(exc: BaseException) -> bool:
    """An OSError with an errno: a failed write or rename under the output folder."""
    return isinstance(exc, OSError) and exc.errno is not None


def output_error(exc: OSError, out: Path, resume: bool = True) -> OutputError:
    """The classed one-line error for a failed write under `out`."""
    again = "run the same command to resume" if resume else "run the command again"
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in DISK_FULL:
        what = "disk quota exceeded" if exc.errno == errno.EDQUOT else "no space left on device"
        return OutputError(f"{what} writing {out}{where}: free space on {mount_point(out)} and {again}",
                           EXIT_DISK_FULL)
    if exc.errno in NOT_WRITABLE:
        why = "read-only file system" if exc.errno == errno.EROFS else "permission denied"
        return OutputError(f"cannot write to {out} ({why}): make it writable or choose another output, "
                           f"then {again}", EXIT_NOT_WRITABLE)
    reason = exc.strerror or os.strerror(exc.errno or 0)
    return OutputError(f"I/O error writing {out}{where}: {reason}; check the disk, then {again}", EXIT_IO_ERROR)


@contextlib.contextmanager
def writing(out: Path, resume: bool = True):
    """Inside: a failed write under `out` (an OSError with an errno) becomes its one-line error."""
    try:
        yield
    except OSError as exc:
        if not is_output_error(exc):
            raise
        raise output_error(exc, out, resume) from None


def check_writable(out: Path) -> None:
    """Refuse an output folder that cannot be written (read-only mount, no permission, full),
    before any planning or compute: create and remove a probe file in it, or in the nearest
    folder that exists when `out` is still to be created."""
    out = Path(out)
    target = out
    while not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir():
        return  # not a folder: the command's own checks name that problem
    try:
        fd, probe = tempfile.mkstemp(prefix=".nst-write-probe.", dir=target)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise output_error(exc, out, resume=False) from None
