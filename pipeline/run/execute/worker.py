"""One worker's loop: claim a shard, continue it from its journal, process, commit.

Task-agnostic: the task turns samples into tar members; the worker owns leases,
durability, manifest rows, progress and preemption. Any number of workers may
run on one run directory at once (ranks, array tasks, separate commands).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field

from pipeline.io.oserrors import is_output_error, output_error
from pipeline.io.shards import ShardWriter, commit_holds, remove_work_files
from pipeline.progress import bar
from pipeline.run.execute.input_check import checked
from pipeline.run.folder.leases import HOST, Heartbeat, Lease, try_acquire
from pipeline.run.execute.overlap import BackgroundWriter, Prefetcher, overlap_allowed
from pipeline.run.execute.options import RunOptions
from pipeline.run.folder.plan import RunPlan
from pipeline.run.execute.stop import request_stop, stop_requested
from pipeline.run.task import OK, Sample, SampleResult, Task, failed, resolve_members


def _threads() -> int:
    import torch

    return torch.get_num_threads()


@dataclass
class WorkerStats:
    processed: int = 0
    ok: int = 0
    failed: int = 0
    shards_committed: int = 0
    stopped: bool = False
    seconds: float = 0.0
    statuses: dict = field(default_factory=dict)


class Worker:
    """Runs a Task over the shards of a RunPlan that nobody else holds."""

    def __init__(self, plan: RunPlan, task: Task, opts: RunOptions, rank: int = 0, world: int = 1,
                 device: str = "cpu"):
        self.plan, self.task, self.opts = plan, task, opts
        self.rank, self.world, self.device = rank, world, device
        self.stats = WorkerStats()
        self._ready = False
        self._visited: set[int] = set()   # shards this worker committed (or retried) this run
        self._done: set[int] = set()      # shards seen done: not re-read on every poll
        self._heartbeat: Heartbeat | None = None
        self._bar = None
        self._start = time.time()

    # -- shard selection -------------------------------------------------------------------------
    def shard_order(self) -> list[dict]:
        """All shards, starting at this rank's slice so ranks rarely contend for the same lease."""
        shards = self.plan.shards
        n = len(shards)
        start = (self.rank * n) // max(1, self.world)
        return shards[start:] + shards[:start]

    def is_done(self, shard: dict) -> bool:
        if shard["id"] in self._done:
            return True
        rec, problem = commit_holds(self.plan.shard_paths(shard))
        if problem is not None:
            return False
        if (self.opts.retry_failed and shard["id"] not in self._visited
                and rec["counts"].get(OK, 0) != shard["count"] and rec.get("retry_id") != self.opts.retry_id):
            return False  # has failures that this invocation has not retried yet
        self._done.add(shard["id"])
        return True

    def try_shard(self, shard: dict) -> bool:
        """Claim and finish `shard` if it is neither done nor held; True if this worker worked on it."""
        if stop_requested() or self.is_done(shard):
            return False
        self._ensure_ready()  # outside the try below: its errors are not the output's
        try:
            return self._claim_and_process(shard)
        except OSError as exc:
            if not is_output_error(exc):
                raise
            # A full disk or a folder made read-only: what is durable stays; every rank stops
            # and the command ends with one line that says what to do.
            error = output_error(exc, self.plan.root)
            request_stop("output error", error.exit_code, str(error))
            return False

    def _claim_and_process(self, shard: dict) -> bool:
        paths = self.plan.shard_paths(shard)
        lease = try_acquire(paths.lease, f"rank{self.rank}@{HOST}:{os.getpid()}", self.opts.lease_ttl)
        if lease is None:
            return False
        try:
            if self.is_done(shard):  # committed by someone else between our check and the claim
                if self.opts.retry_failed is False:
                    remove_work_files(paths)
                return False
            self._process_shard(shard, lease)
            return True
        finally:
            if self._heartbeat is not None:
                self._heartbeat.lease = None
            lease.release()

    def pending(self) -> list[dict]:
        return [s for s in self.plan.shards if not self.is_done(s)]

    def drain(self, wait: bool = True) -> WorkerStats:
        """After a pass: keep taking shards (incl. stale leases) until all are done."""
        while not stop_requested():
            left = self.pending()
            if not left:
                break
            worked = False
            for shard in left:
                worked |= self.try_shard(shard)
            if not worked:
                if not wait:
                    break
                time.sleep(self.opts.poll)
        self.stats.stopped = stop_requested()
        self.stats.seconds = time.time() - self._start
        self.close()
        return self.stats

    # -- processing ------------------------------------------------------------------------------
    def _ensure_ready(self) -> None:
        if not self._ready:
            self.task.setup(self.device)
            self._heartbeat = Heartbeat(max(1.0, self.opts.lease_ttl / 10))
            self._ready = True

    def _progress(self):
        if self._bar is None:
            from pipeline.run.views.shard_state import done_count

            done = done_count(self.plan)
            self._bar = bar(self.plan.total, desc=f"{self.task.name} rank {self.rank}",
                            unit="img", position=self.rank, disable=not self.opts.progress)
            self._bar.update(done)
            self._bar_start = (time.time(), done)
        return self._bar

    def _process_shard(self, shard: dict, lease: Lease) -> None:
        """Batches of the shard's unfinished samples. With overlap on, batch i+1 is decoded
        (`Task.load`) and batch i-1 encoded and made durable while batch i is optimised;
        the compute thread waits for the writer only before a commit or an abandon."""
        self._ensure_ready()
        self._heartbeat.lease = lease
        paths = self.plan.shard_paths(shard)
        rec, problem = commit_holds(paths)
        writer = ShardWriter.resume(paths, self.plan.mtime, from_commit=problem is None)
        samples = self.plan.shard_samples(shard)
        rows = writer.rows()
        todo = [s for s in samples if s.key not in rows
                or (self.opts.retry_failed and rows[s.key]["status"] != OK and shard["id"] not in self._visited)]
        if todo:
            self.task.begin_shard(samples, todo, rows, writer.members)
        progress = self._progress()
        overlap = self.opts.overlap and overlap_allowed()
        has_load = type(self.task).load is not Task.load
        size = max(1, int(getattr(self.task, "batch_size", 1)))
        background = BackgroundWriter(enabled=overlap)
        try:
            keys = {t.index: self.task.batch_key(t) for t in samples} if size > 1 and todo else None
            with Prefetcher(batches(todo, samples, size, keys), self.task.load,
                            enabled=overlap and has_load) as inputs:
                for batch, loaded in inputs:
                    if stop_requested() or not lease.still_ours(max_age=1.0):
                        background.sync()  # every finished sample durable; the next attempt continues
                        return
                    started = time.time()
                    results = self._run_batch(batch, loaded)
                    background.submit(lambda b=batch, r=results, t=started: self._write_batch(
                        writer, shard, rows, b, r, t, lease, progress))
            background.sync()
            if not lease.still_ours():
                return
            writer.commit([s.key for s in samples],
                          {"retry_id": self.opts.retry_id} if self.opts.retry_failed else None)
        finally:
            background.close()  # joins the writer thread (queued samples are written first)
            writer.abandon()    # closes the work files; a no-op after a commit
        self._visited.add(shard["id"])
        self.stats.shards_committed += 1

    def _write_batch(self, writer: ShardWriter, shard: dict, rows: dict, batch: list[Sample],
                     results: list[SampleResult], started: float, lease: Lease, progress) -> None:
        """Encode, hash and durably append one batch's samples in order (writer thread)."""
        for sample, result in zip(batch, results):
            result, digest = checked(sample, resolve_members(sample, result))
            prev = rows.get(sample.key)
            row = self._row(shard, sample, result, started, (prev or {}).get("attempt", 0) + 1)
            if digest is not None:
                row["source_sha256"] = digest
            writer.append(sample.key, result.members if result.ok else {}, row)
            self._count(result)
            progress.update(1)  # counted once durable
        lease.touch()
        self._postfix(progress)

    def _run_batch(self, batch: list[Sample], loaded=None) -> list[SampleResult]:
        try:
            results = self.task.process(batch) if loaded is None else self.task.process(batch, loaded=loaded)
            if len(results) != len(batch):
                raise RuntimeError(f"task returned {len(results)} results for {len(batch)} samples")
            return results
        except Exception as exc:  # noqa: BLE001 - a sample's failure must not stop the run
            if len(batch) > 1:
                return [r for s in batch for r in self._run_batch([s])]
            _free_device_memory()
            return [failed(batch[0], exc)]

    def _row(self, shard: dict, sample: Sample, result: SampleResult, started: float, attempt: int) -> dict:
        outputs = {ext: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                   for ext, data in result.members.items()} if result.ok else {}
        row = dict(result.meta)
        row.update({
            "key": sample.key, "index": sample.index, "shard": shard["name"], "source": sample.published_source,
            "styles": sample.published_styles, "seed": sample.seed, "status": result.status,
            "error": result.error or "", "outputs": outputs, "attempt": attempt,
            "worker": {"rank": self.rank, "host": HOST, "pid": os.getpid(), "device": self.device,
                       "threads": _threads()},  # CPU outputs depend on it (run/execute/threads.py)
            "started_at": round(started, 3), "finished_at": round(time.time(), 3),
        })
        if sample.extra:
            row["extra"] = sample.extra
        return row

    def _count(self, result: SampleResult) -> None:
        self.stats.processed += 1
        self.stats.statuses[result.status] = self.stats.statuses.get(result.status, 0) + 1
        if result.ok:
            self.stats.ok += 1
        else:
            self.stats.failed += 1

    def _postfix(self, progress) -> None:
        t0, _ = self._bar_start
        minutes = max(1e-9, (time.time() - t0) / 60)
        progress.set_postfix_str(f"{self.stats.processed / minutes:.1f} img/min, failed {self.stats.failed}")

    def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
        if self._bar is not None:
            self._bar.close()


def batches(todo: list[Sample], shard: list[Sample], size: int, keys: dict | None = None) -> list[list[Sample]]:
    """Batches at fixed positions, so which samples share a batch depends on the plan only, not
    on where a previous attempt stopped.

    `shard` is every sample of the shard in plan order, `todo` the unfinished ones. Without
    keys the positions are the shard's ([0, size), [size, 2*size), ...). With keys (global
    index -> the task's `batch_key` for every sample of the shard) they are positions within
    each key's samples, in plan order: samples that can be optimised together (same working
    size and styles) share batches even when the shard interleaves sizes.
    """
    slot = {}
    seen: dict = {}
    for position, s in enumerate(shard):
        if keys is None:
            slot[s.index] = position // size
        else:
            n = seen.get(keys[s.index], 0)
            seen[keys[s.index]] = n + 1
            slot[s.index] = (keys[s.index], n // size)
    out: dict = {}
    for s in todo:
        out.setdefault(slot[s.index], []).append(s)
    return list(out.values())


def _free_device_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001
        pass
