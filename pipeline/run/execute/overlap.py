"""Two background threads that keep the device busy in the dataset worker.

Without them a worker decodes a batch, optimises it, encodes the outputs,
hashes them and fsyncs tar and journal strictly in turn, and the device idles
during every CPU step. `Prefetcher` decodes batch i+1 while batch i is being
optimised; `BackgroundWriter` encodes, hashes and appends finished samples in
order while the next batch is optimised. Both have an `enabled=False` mode that
runs the same functions inline, so overlap on and off take the same code path
(and give byte-identical shards).

Neither thread touches the device or the RNG; each is always joined (`close`,
also on KeyboardInterrupt and stop requests), and an exception in the writer
thread is re-raised on the caller's thread at the next `submit` or `sync`.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

OVERLAP_ENV = "NST_OVERLAP"


def overlap_allowed() -> bool:
    """False when the environment says NST_OVERLAP=0 (for comparing runs, or on a machine
    where the extra threads hurt); the CLI's --no-overlap sets the same switch per run."""
    return os.environ.get(OVERLAP_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _load_or_none(load: Callable, item):
    """A loader that raises counts as 'not loaded': the consumer then does the work itself
    (and turns per-sample failures into failed rows exactly as without prefetching)."""
    try:
        return load(item)
    except Exception:  # noqa: BLE001
        return None


class Prefetcher:
    """Yields (item, load(item)) in order, computing load(next item) in one thread while
    the caller works on the current one. `load` must be CPU-only and thread-safe.

    Use as a context manager: leaving it (break, return, exception) cancels or waits
    for the one pending load and joins the thread.
    """

    def __init__(self, items: Iterable, load: Callable, enabled: bool = True):
        self.items, self.load, self.enabled = list(items), load, enabled
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator:
        if not self.enabled:
            for item in self.items:
                yield item, _load_or_none(self.load, item)
            return
        if not self.items:
            return
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nst-prefetch")
        self._pending = self._pool.submit(_load_or_none, self.load, self.items[0])
        for i, item in enumerate(self.items):
            loaded = self._pending.result()
            self._pending = None
            if i + 1 < len(self.items):
                self._pending = self._pool.submit(_load_or_none, self.load, self.items[i + 1])
            yield item, loaded

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class BackgroundWriter:
    """Runs submitted jobs one at a time, in submission order, in one thread.

    `submit` returns at once unless `depth` jobs are already queued (back-pressure
    keeps finished-but-unwritten outputs bounded). `sync` waits until every job
    submitted so far has run. After a job raises, later jobs are skipped (not run,
    so nothing after the failure becomes durable) and the exception is re-raised
    by the next `submit` or `sync`. `close` lets the queued jobs finish, then joins.
    """

    def __init__(self, enabled: bool = True, depth: int = 2):
        self.enabled = enabled
        self._error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._thread: threading.Thread | None = None
        if enabled:
            # daemon only as a last resort: close() joins it on every path the worker takes
            self._thread = threading.Thread(target=self._run, name="nst-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    job()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                self._error = exc
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:  # kept: the thread goes on skipping jobs after a failure
            raise self._error

    def submit(self, job: Callable[[], None]) -> None:
        self._raise()
        if self._thread is None:
            job()
        else:
            self._queue.put(job)

    def sync(self) -> None:
        """Wait for every submitted job; re-raise the first error among them."""
        if self._thread is not None:
            self._queue.join()
        self._raise()

    def close(self) -> None:
        """Finish queued jobs (unless one failed), stop and join the thread. Never raises
        a job's error: call `sync` first where the error matters."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
