"""Write-then-rename helpers: a reader never sees a half-written file.

Files are created with mode 0666 and the process umask applies, as for any other
tool's files (0644 under umask 022): teammates on shared scratch read the index
files as they read the tars. (tempfile.mkstemp would make them 0600.)
"""

from __future__ import annotations

import errno
import os
import re
import uuid
from pathlib import Path

from pipeline.errors import BadInput


def temp_beside(path: Path) -> tuple[int, str]:
    """(fd, name) of a new, exclusively created temporary file next to `path`, mode 0666 & ~umask."""
    while True:
        tmp = str(path.parent / f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
        try:
            return os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666), tmp
        except FileExistsError:
            continue


def make_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create `path` and its parents (a missing output folder is created), or refuse in one line
    when it cannot be (a file in the way, no permission, read-only filesystem)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create {what} {str(path)!r}: {exc.strerror or exc}") from None
    return path


# A folder's fsync fails with EINVAL on filesystems that cannot sync a directory (some FUSE and
# network mounts): nothing more can be done there, so that one is tolerated. Any other error (EIO)
# means the renames in the folder may not survive a power cut, so the run must not report success.
UNSYNCABLE_DIR = (errno.EINVAL, errno.ENOTSUP)


def fsync_dir(path: Path) -> None:
    """Make the names in `path` durable (after a rename, link or create in it). Raises OSError,
    except where the filesystem does not support fsync on a folder."""
    fd = os.open(str(path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in UNSYNCABLE_DIR:
            raise
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Write data to a unique temporary name beside `path`, fsync, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


TEMP_RE = re.compile(r"^\..+\.(\d+)-[0-9a-f]{12}\.tmp$")  # the names temp_beside makes (with the writer's pid)


def pid_alive(pid: int) -> bool:
    """Whether a process of this pid runs on this host (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: Path) -> int:
    """Delete the temporaries that killed writers left in `folder`: only names temp_beside makes,
    and only those whose writer's pid is gone on this host (a live writer's are left alone)."""
    removed = 0
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 0
    for name in names:
        m = TEMP_RE.match(name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            try:
                os.unlink(folder / name)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


class BatchWriter:
    """Many files made durable together, without one fsync round trip each: every file goes to a
    temporary name beside its target, `flush()` fsyncs the temporaries together from a thread pool
    (concurrent fsyncs share the filesystem's journal commits), then renames them and fsyncs the
    folders. No name ever points at bytes that are not on disk, as with atomic_write_bytes."""

    def __init__(self, threads: int = 8):
        self.threads = threads
        self.pending: list[tuple[str, Path]] = []
        self.folders: set[Path] = set()  # folders whose entries changed (renames, new subfolders)

    def add(self, path: Path, data: bytes) -> None:
        path = Path(path)
        missing = path.parent
        while not missing.exists():
            self.folders.add(missing.parent)
            missing = missing.parent
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = temp_beside(path)
        self.pending.append((tmp, path))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except BaseException:
            self.discard()
            raise

    def flush(self) -> int:
        """Publish every file added so far; returns how many."""
        from concurrent.futures import ThreadPoolExecutor

        def sync(tmp: str) -> None:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        pending = self.pending
        try:
            with ThreadPoolExecutor(self.threads) as pool:
                list(pool.map(sync, [t for t, _ in pending]))
            for tmp, path in pending:
                os.replace(tmp, path)
                self.folders.add(path.parent)
        except BaseException:
            self.discard()
            raise
        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(fsync_dir, sorted(self.folders, key=lambda p: -len(p.parts))))
        self.pending, self.folders = [], set()
        return len(pending)

    def discard(self) -> None:
        """Remove the temporaries not yet published (after a failed write)."""
        for tmp, _ in self.pending:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        self.pending = []
