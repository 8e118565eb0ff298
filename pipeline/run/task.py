"""The interface every dataset method implements so the one runner can execute it.

A method (stylize, texture, invert, dream, visualize) supplies a `Task`: what the
run's identity is (`identity`, `weights_digest`), which samples exist (`plan`),
how to get ready on a device (`setup`) and how to turn samples into tar members
(`process`). The runner owns everything else: run.json, keys, per-sample seeds,
shards, leases, journals, resume, manifests, status and verify. A task never
writes files, never knows its rank and never touches Lightning.

Lifecycle (per worker process):

    task.identity(), task.plan()     # on every start; must be deterministic
    task.setup(device)               # once per worker: load the backbone, caches
    task.batch_key(Sample)           # optional: which samples may share a batch (same size...)
    task.load([Sample, ...])         # optional, in a prefetch thread: decode the next batch
    task.process([Sample, ...], loaded=...)  # many times; batches of <= task.batch_size

`load` (CPU only, thread-safe, no device work) runs while the previous batch is
being optimised and its return value is passed to `process` as `loaded`; a task
that does not override it keeps the one-argument `process(samples)`. Result
members may be zero-argument callables returning bytes: the runner calls them in
its writer thread, so encoding overlaps the next batch (see pipeline/run/execute/overlap.py).

Per-sample seeds are derived by the runner from (run seed, global index), so a
sample's output does not depend on which worker ran it or in what order.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from pipeline.errors import (  # noqa: F401  (the statuses and NonFiniteResult are part of the Task contract)
    FAILED_DECODE, FAILED_ERROR, FAILED_IO, FAILED_MISSING, FAILED_NAN, FAILED_OOM, OK, SKIPPED_TOO_LARGE, STATUSES,
    DecodeError, InputNotFound, MissingInput, NonFiniteResult,
)


@dataclass(frozen=True)
class Planned:
    """One planned unit of work as a task describes it, before the runner numbers it.

    source: the content/input file (None for methods without one, e.g. texture).
    styles: style/reference files this sample uses (empty if none).
    extra:  JSON-serialisable per-sample parameters (recorded in the plan and
            passed back in `Sample.extra`), e.g. {"assign": "cycle"}.
    rel:    the source as published in manifests and sample records (relative to the
            task's `data_root`); None publishes `source` itself.
    key:    an explicit output key (already a valid webdataset key); None derives it
            from the global index.
    """

    source: str | None
    styles: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)
    rel: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class Sample:
    """A numbered sample as the runner hands it to `Task.process`."""

    index: int                 # stable global index in the plan (0-based)
    key: str                   # webdataset key, ^[A-Za-z0-9_-]+$, derived from index
    source: str | None
    styles: tuple[str, ...]
    seed: int                  # sample_seed(run seed, index)
    extra: dict = field(default_factory=dict)
    rel: str | None = None     # the published source (relative to the run's data root)
    planned: dict | None = None  # the source's size, mtime_ns, sha256 when the run was planned
    style_rel: tuple[str, ...] | None = None  # the published styles (relative to the run's style root)

    @property
    def published_source(self) -> str | None:
        return self.rel if self.rel is not None else self.source

    @property
    def published_styles(self) -> list[str]:
        return list(self.style_rel if self.style_rel is not None else self.styles)


@dataclass
class SampleResult:
    """What one sample produced.

    members: extension -> bytes, written into the tar as f"{key}.{ext}" (for an
             "ok" result; e.g. {"png": ..., "json": ...}). Empty for failures.
             A value may also be a zero-argument callable returning the bytes
             (a deferred encode); if it raises, the sample becomes a failed row.
    meta:    JSON-serialisable facts for the manifest row (losses, iterations,
             seconds, size ...).
    """

    key: str
    status: str = OK
    members: dict[str, bytes | Callable[[], bytes]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK


class Task:
    """Base class: override identity, plan, setup and process."""

    name: str = "task"              # shown in progress bars and run.json
    shard_prefix: str = "samples"   # shards are shards/{shard_prefix}-{id:06d}.tar
    batch_size: int = 1             # the runner hands process() at most this many samples
    whole_groups: bool = False      # True: each run of equal `shard_key`s is one shard, never cut or mixed

    def identity(self) -> dict:
        """The normalised configuration (JSON-serialisable); hashed into the run's identity.

        Must not contain anything about devices or worker counts.
        """
        raise NotImplementedError

    def seed(self) -> int:
        """The run seed; per-sample seeds are derived from it."""
        return int(self.identity().get("seed", 0))

    def weights_digest(self) -> str:
        """Digest of the backbone weights, recorded in run.json (part of the identity)."""
        raise NotImplementedError

    def plan(self) -> Iterable[Planned]:
        """The samples this run must produce, in order; deterministic. May be a generator:
        the runner streams it (a plan of millions is never held in memory)."""
        raise NotImplementedError

    def data_root(self) -> str | None:
        """Optional: the folder `Planned.rel` paths are relative to (recorded once in run.json)."""
        return None

    def style_files(self) -> list[str]:
        """Optional: every style file the plan may name; run.json records their common folder once
        and manifests and sample records name each style relative to it."""
        return []

    def finish(self, root: Path, device: str, show_progress: bool) -> list[str]:
        """Optional: once every shard is done (all ok or some failed), in rank 0 only: a reduce step
        over the run's outputs (visualize's grids, imagine's sheet). Returns the lines to print."""
        return []

    def setup(self, device: str) -> None:
        """Load models and build caches once per worker process on `device`."""

    def batch_key(self, sample: Sample) -> Any:
        """Optional: a hashable saying which samples can share one `process` batch (e.g. the
        working size and styles, read from the image header). The runner batches a shard's
        samples by key; None for every sample (the default) keeps plain shard positions."""
        return None

    def shard_key(self, sample: Sample) -> Any:
        """Optional: a hashable the plan groups samples by before cutting them into shards
        (stylize: its `batch_key`), so that a shard of a dataset of mixed sizes holds few
        distinct keys and its batches fill. None for every sample (the default) keeps the
        shards as runs of consecutive samples. It must depend only on the sample's source file,
        styles and `extra` (not its index, key or seed): the planner asks once per distinct
        (source, its size and mtime, styles, extra) and reuses the answer for repeated rows.
        `sample.planned` holds the source's size and mtime as the planner described it."""
        return None

    def begin_shard(self, samples: list[Sample], todo: list[Sample], rows: dict[str, dict],
                    read: Callable[[str], dict[str, bytes]]) -> None:
        """Optional: called before `todo` (the shard's samples still to do, in order; `samples` is
        all of them) is processed. `rows` are the manifest rows already durable in the shard (from
        an earlier, interrupted attempt) and `read(key)` returns such a sample's members (extension
        -> bytes). A task whose samples depend on earlier ones of the same shard (video frames)
        restores its state from them."""

    def load(self, samples: list[Sample]) -> Any:
        """Optional: decode the inputs of `samples` ahead of `process`, in a background
        thread while the previous batch is optimised. CPU only, thread-safe, no device
        work, never raises for one sample's problem (return it for `process` to record
        as that sample's failed row). None means "not loaded": `process` does it itself."""
        return None

    def process(self, samples: list[Sample], loaded: Any = None) -> list[SampleResult]:
        """Produce one result per sample, in order. Per-sample problems should be
        returned as failed results (see `classify`); an exception fails the batch.
        `loaded` is what `load(samples)` returned (None: decode here)."""
        raise NotImplementedError


def sample_seed(run_seed: int, index: int) -> int:
    """A 63-bit seed that depends only on the run seed and the sample's global index."""
    h = hashlib.sha256(f"nst-sample-seed:{int(run_seed)}:{int(index)}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def sample_key(index: int, total: int) -> str:
    """Zero-padded decimal key: no dots, sortable, at least 8 digits."""
    return str(index).zfill(max(8, len(str(max(total - 1, 0)))))


def number(planned: Iterable[Planned], run_seed: int) -> list[Sample]:
    """Give each planned item its global index, key and seed (small plans, in memory: tests, tools)."""
    planned = list(planned)
    n = len(planned)
    return [Sample(i, p.key or sample_key(i, n), p.source, tuple(p.styles), sample_seed(run_seed, i),
                   dict(p.extra), p.rel) for i, p in enumerate(planned)]


def classify(exc: BaseException) -> str:
    """Map an exception raised while processing a sample to a manifest status."""
    import torch
    from PIL import Image

    if isinstance(exc, InputNotFound):
        return FAILED_MISSING
    if isinstance(exc, MissingInput):
        return FAILED_IO
    if isinstance(exc, DecodeError):
        return FAILED_DECODE
    if isinstance(exc, NonFiniteResult):
        return FAILED_NAN

    if isinstance(exc, Image.DecompressionBombError):  # more pixels than PIL will decode
        return SKIPPED_TOO_LARGE
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return FAILED_OOM
    if isinstance(exc, FileNotFoundError):
        return FAILED_MISSING
    if isinstance(exc, OSError):
        return FAILED_IO
    return FAILED_ERROR


def failed(sample: Sample, exc: BaseException) -> SampleResult:
    """A failed result for `sample` with the exception's class and one-line message."""
    msg = (str(exc).splitlines() or [type(exc).__name__])[0]
    msg = re.sub(r" ?<[^<>]* object at 0x[0-9a-fA-F]+>", "", msg)[:500]  # stable, groupable messages
    return SampleResult(sample.key, classify(exc), {}, {}, f"{type(exc).__name__}: {msg}")


def resolve_members(sample: Sample, result: SampleResult) -> SampleResult:
    """`result` with every deferred (callable) member turned into bytes; an exception while
    encoding makes it a failed result for this sample only (status from `classify`)."""
    if not result.ok or not any(callable(v) for v in result.members.values()):
        return result
    try:
        members = {}
        for ext, value in result.members.items():
            data = value() if callable(value) else value
            if not isinstance(data, (bytes, bytearray)):
                raise TypeError(f"member {ext!r} of {sample.key} is {type(data).__name__}, not bytes")
            members[ext] = bytes(data)
    except Exception as exc:  # noqa: BLE001 - recorded as a failed row, the run goes on
        return failed(sample, exc)
    return SampleResult(result.key, result.status, members, result.meta, result.error)
