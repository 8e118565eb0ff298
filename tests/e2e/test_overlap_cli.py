"""Decode/encode overlap through the real `nst` CLI: identical shards on and off, failures, stop and resume."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from dataset_util import manifest_rows, nst, tar_samples
from pipeline.errors import EXIT_OK, EXIT_PREEMPTED, EXIT_SAMPLES_FAILED
from pipeline.io.shards import read_journal
from pipeline.run.execute import stop
from pipeline.run.folder.plan import plan_run
from pipeline.run.execute.options import RunOptions
from pipeline.run.execute.runner import execute
from pipeline.run.execute.worker import Worker
from tests.unit.run.execute.test_overlap import Reencode, _files, _threads, dataset  # noqa: F401 (dataset: a fixture)


TIMING = ("started_at", "finished_at", "worker", "seconds")
RUN = ["--size", "32", "--iterations", "10", "--no-progress", "--device", "cpu", "--set", "batch_size=2",
       "--shard-size", "3"]


def _strip(row: dict) -> dict:
    """A row or json record without timings and pids (the json member's hash holds its `seconds`)."""
    out = {k: v for k, v in row.items() if k not in TIMING}
    if "outputs" in out:
        out["outputs"] = {ext: v for ext, v in out["outputs"].items() if ext != "json"}
    return out


def test_overlap_on_and_off_give_identical_shards(dataset):
    root, data, style = dataset
    runs = {}
    for name, flags in (("on", []), ("off", ["--no-overlap"])):
        out = root / f"run-{name}"
        r = nst("stylize", data, "--style", style, "--out", out, *RUN, *flags)
        assert r.returncode == EXIT_SAMPLES_FAILED, r.stderr[-3000:]
        runs[name] = out
    on, off = tar_samples(runs["on"]), tar_samples(runs["off"])
    assert sorted(on) == sorted(off) == ["00000000", "00000001", "00000002", "00000004", "00000005"]
    for key in on:
        assert on[key]["png"] == off[key]["png"], f"{key}: png differs with overlap off"
        assert _strip(json.loads(on[key]["json"])) == _strip(json.loads(off[key]["json"]))
    rows_on, rows_off = manifest_rows(runs["on"]), manifest_rows(runs["off"])
    assert [_strip(r) for r in rows_on] == [_strip(r) for r in rows_off]
    # the unreadable header puts the corrupt file in a group of its own, after the others
    assert {r["key"]: r["status"] for r in rows_on} == {
        f"{i:08d}": "failed_decode" if i == 3 else "ok" for i in range(6)}
    assert {r["batch"] for r in rows_on if r["status"] == "ok"} == {2, 1}  # a0+a1 optimised together
    for out in runs.values():
        assert nst("verify", out).returncode == EXIT_OK


def test_encode_failure_in_writer_thread_is_one_failed_row(tmp_path):
    files = _files(tmp_path)
    out = tmp_path / "run"
    task = Reencode(files, bad_encode=2)  # sample 2 shares its batch with sample 3
    assert execute(task, RunOptions(out=out, shard_size=4, device="cpu", progress=False)) == EXIT_SAMPLES_FAILED
    rows = {r["key"]: r for r in manifest_rows(out)}
    assert sorted(rows) == [f"{i:08d}" for i in range(7)]  # every planned key exactly once
    bad = rows.pop("00000002")
    assert bad["status"] == "failed_error" and "unknown output format 'tiff'" in bad["error"]
    assert bad["outputs"] == {}
    assert {r["status"] for r in rows.values()} == {"ok"}
    samples = tar_samples(out)
    assert sorted(samples) == sorted(rows)
    for i, f in enumerate(files):
        if i != 2:
            assert Image.open(io.BytesIO(samples[f"{i:08d}"]["png"])).tobytes() == Image.open(f).tobytes()
    assert len(list((out / "commits").glob("*.json"))) == 2
    assert nst("verify", out).returncode == EXIT_OK
    assert not _threads()


def test_stop_and_interrupt_keep_finished_work_and_resume_completes(tmp_path):
    files = _files(tmp_path)
    out = tmp_path / "run"
    opts = RunOptions(out=out, shard_size=7, device="cpu", progress=False)
    first = Reencode(files, stop_at=2)  # stop requested while batch [2, 3] is processed
    try:
        assert execute(first, opts) == EXIT_PREEMPTED
    finally:
        stop.reset()
    assert first.processed == ["00000000", "00000001", "00000002", "00000003"]
    assert not _threads() and not list((out / "leases").iterdir()) and not list((out / "commits").iterdir())
    (journal,) = (out / "work").glob("*.journal")
    assert [e["row"]["key"] for e in read_journal(journal)] == [f"{i:08d}" for i in range(4)]  # all durable

    # a KeyboardInterrupt inside the next batch: the worker's threads are joined, nothing written twice
    second = Reencode(files, interrupt_at=5)
    worker = Worker(plan_run(out, second, 7), second, RunOptions(out=out, progress=False, lease_ttl=60))
    try:
        with pytest.raises(KeyboardInterrupt):
            for shard in worker.shard_order():
                worker.try_shard(shard)
            worker.drain(wait=False)
    finally:
        worker.close()
    assert second.processed == ["00000004"]
    assert not _threads() and not list((out / "leases").iterdir())
    (journal,) = (out / "work").glob("*.journal")
    assert [e["row"]["key"] for e in read_journal(journal)] == [f"{i:08d}" for i in range(4)]

    third = Reencode(files)
    assert execute(third, opts) == EXIT_OK
    assert third.processed == ["00000004", "00000005", "00000006"]
    samples = tar_samples(out)  # asserts no key twice
    assert sorted(samples) == [f"{i:08d}" for i in range(7)]
    assert [r["key"] for r in manifest_rows(out)] == sorted(samples)
    assert nst("verify", out).returncode == EXIT_OK
