"""Image sizes from headers, read once per distinct file (path, size, mtime).

`--shard-order size` groups a plan by each sample's working size, which comes from its
image header. A list of a million rows often names far fewer files (an epoch repeated, a
file per class sampled many times); reading a header per row made the default plan of
1M rows over 1,000 files cost ten times the `input` order (issue 28). The planner knows
each file's size and mtime anyway (it records them), so a header is keyed by
(path, size, mtime_ns): a file that changed is a new key and is read again.

Threads may ask for the same file at once: the first reads it, the others wait for
its answer, so a distinct key is read exactly once while it is remembered.
"""

from __future__ import annotations

import threading

from pipeline.io.images import image_size

LIMIT = 200_000   # keys remembered (about 200 bytes each beyond the path: 40 MB at most); then all forgotten


class _Pending:
    """A header read in progress in another thread."""

    __slots__ = ("done", "value")

    def __init__(self):
        self.done = threading.Event()
        self.value = None


class HeaderCache:
    """`image_size` per (path, size, mtime_ns), thread-safe; `reads` counts the files actually opened."""

    def __init__(self, limit: int = LIMIT):
        self.limit = limit
        self.reads = 0
        self._known: dict = {}
        self._lock = threading.Lock()

    def size(self, path: str, size: int, mtime_ns: int) -> tuple[int, int] | None:
        """(width, height) as `image_size(path)` gives it, read once per distinct key."""
        key = (path, size, mtime_ns)
        hit = self._known.get(key)
        if hit is not None and not isinstance(hit, _Pending):
            return hit[0]
        with self._lock:
            hit = self._known.get(key)
            if hit is None:
                if len(self._known) >= self.limit:
                    self._known = {k: v for k, v in self._known.items() if isinstance(v, _Pending)}
                mine = self._known[key] = _Pending()
                self.reads += 1
        if hit is None:
            try:
                mine.value = image_size(path)
            finally:
                with self._lock:
                    self._known[key] = (mine.value,)  # a 1-tuple: None (unreadable) is an answer too
                mine.done.set()
            return mine.value
        if isinstance(hit, _Pending):
            hit.done.wait()
            return hit.value
        return hit[0]

    def clear(self) -> None:
        with self._lock:
            self._known = {}


HEADERS = HeaderCache()  # one per process: the planner's threads and a worker's batching share it


def planned_image_size(path: str, planned: dict | None) -> tuple[int, int] | None:
    """The image's size, through HEADERS when the plan described the file (size and mtime
    known); otherwise read from its header as `image_size` does."""
    if planned and planned.get("size") is not None and planned.get("mtime_ns") is not None:
        return HEADERS.size(path, planned["size"], planned["mtime_ns"])
    return image_size(path)
