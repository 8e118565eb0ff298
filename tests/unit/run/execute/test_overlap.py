"""Overlapping decode / encode / writes with compute in the dataset worker (pipeline/run/execute/overlap.py).

Real VGG16 on tiny images, real tar files and journals: overlap on and off give the same
shards; prefetched decode failures and deferred-encode failures become exactly one failed
row; a writer error surfaces on the compute thread; a stop or a KeyboardInterrupt leaves
every finished sample durable, joins both threads, and a later run completes the shard.
"""

from __future__ import annotations

import io
import threading

import pytest
from PIL import Image

from dataset_util import FileTask, manifest_rows, picture, tar_samples
from pipeline.errors import EXIT_SAMPLES_FAILED
from pipeline.io.images import encode_image, load_image
from pipeline.io.shards import read_journal
from pipeline.run.execute import stop
from pipeline.run.folder.plan import plan_run
from pipeline.run.execute.options import RunOptions
from pipeline.run.execute.runner import execute
from pipeline.run.task import SampleResult, Task, failed
from pipeline.run.execute.worker import Worker



def _threads() -> set[str]:
    return {t.name.split("_")[0] for t in threading.enumerate() if t.name.startswith(("nst-writer", "nst-prefetch"))}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Six inputs of two sizes; a3.png is truncated (its header, and so its batch key, is intact,
    its pixels are not) and shares the second batch (a prefetched one) with a4."""
    root = tmp_path_factory.mktemp("overlap")
    data = root / "data"
    for i, wh in enumerate([(40, 32), (40, 32), (32, 36), (32, 36), (32, 36), (40, 32)]):
        picture(data / f"a{i}.png", wh, seed=i)
    whole = (data / "a3.png").read_bytes()
    (data / "a3.png").write_bytes(whole[: len(whole) // 2])
    style = picture(root / "style.png", (32, 32), seed=42)
    return root, data, style


def test_prefetched_decode_failure_is_that_sample_only(dataset, tmp_path):
    """In-process, so the test can see which thread decoded and which encoded."""
    from pipeline.config import build_config
    from pipeline.io.reader import read_data
    from pipeline.tasks.stylize import StylizeTask

    root, data, style = dataset

    class Watched(StylizeTask):
        """The real StylizeTask, noting the thread of every decode and every deferred encode."""

        loads: list = []
        encodes: list = []

        def load(self, samples):
            self.loads.append((threading.current_thread().name, [s.key for s in samples]))
            return super().load(samples)

        def process(self, samples, loaded=None):
            results = super().process(samples, loaded)
            for r in results:
                for ext, v in list(r.members.items()):
                    if callable(v):
                        r.members[ext] = lambda v=v: (self.encodes.append(threading.current_thread().name), v())[1]
            return results

    cfg = build_config(overrides={"size": 32, "iterations": 10, "batch_size": 2})
    task = Watched(cfg, read_data(data), [str(style)], shard_order="input")  # shards of consecutive samples
    out = tmp_path / "run"
    code = execute(task, RunOptions(out=out, shard_size=3, device="cpu", progress=False))
    assert code == EXIT_SAMPLES_FAILED
    # batches at fixed positions: shard 0 = [0,1] [2]; shard 1 = [3,4] [5]; every decode in the prefetch thread
    assert [keys for _, keys in task.loads] == [["00000000", "00000001"], ["00000002"],
                                                ["00000003", "00000004"], ["00000005"]]
    assert all(name.startswith("nst-prefetch") for name, _ in task.loads), task.loads
    assert task.encodes and set(task.encodes) == {"nst-writer"}
    rows = {r["key"]: r for r in manifest_rows(out)}
    assert sorted(rows) == [f"{i:08d}" for i in range(6)]
    bad = [r for r in rows.values() if r["status"] != "ok"]
    assert len(bad) == 1 and bad[0]["key"] == "00000003" and bad[0]["status"] == "failed_decode"
    assert "a3.png" in bad[0]["error"]
    assert rows["00000004"]["status"] == "ok" and rows["00000004"]["batch"] == 1  # its batch-mate failed
    # the same pixels as a run without overlap (the CLI run of the test above, if it ran first)
    off = root / "run-off"
    if off.exists():
        here, there = tar_samples(out), tar_samples(off)
        assert {k: m["png"] for k, m in here.items()} == {k: m["png"] for k, m in there.items()}
    assert not _threads()


class Reencode(FileTask, Task):
    """Decode in `load`, store as PNG with a deferred encode: real files, no network."""

    batch_size = 2

    def __init__(self, files, stop_at=None, interrupt_at=None, bad_encode=None, bad_member=None):
        self.files, self.stop_at, self.interrupt_at = files, stop_at, interrupt_at
        self.bad_encode, self.bad_member = bad_encode, bad_member
        self.processed: list[str] = []

    def load(self, samples):
        out = {}
        for s in samples:
            try:
                out[s.key] = load_image(s.source)
            except Exception as exc:  # noqa: BLE001
                out[s.key] = exc
        return out

    def process(self, samples, loaded=None):
        loaded = self.load(samples) if loaded is None else loaded
        out = []
        for s in samples:
            if s.index == self.interrupt_at:
                raise KeyboardInterrupt
            self.processed.append(s.key)
            img = loaded[s.key]
            if isinstance(img, BaseException):
                out.append(failed(s, img))
                continue
            fmt = "tiff" if s.index == self.bad_encode else "png"  # encode_image knows no tiff: BadInput
            members = {"png": lambda img=img, fmt=fmt: encode_image(img, fmt)}
            if s.index == self.bad_member:
                members["x" * 120] = b"a tar member name longer than ustar allows"
            out.append(SampleResult(s.key, "ok", members, {"w": img.width}))
            if s.index == self.stop_at:
                stop.request_stop("test")
        return out


def _files(tmp_path, n=7):
    return [picture(tmp_path / "in" / f"{i}.png", seed=i) for i in range(n)]


def test_writer_error_surfaces_and_threads_are_joined(tmp_path):
    """A write that fails (tar member name too long) is an error of the run, not of a sample:
    it is re-raised on the compute thread; samples before it stay durable."""
    files = _files(tmp_path, 5)
    task = Reencode(files, bad_member=3)
    plan = plan_run(tmp_path / "run", task, 5)
    worker = Worker(plan, task, RunOptions(out=plan.root, progress=False, lease_ttl=60))
    try:
        with pytest.raises(ValueError, match="longer than 100 bytes"):
            for shard in worker.shard_order():
                worker.try_shard(shard)
            worker.drain(wait=False)
    finally:
        worker.close()
    assert not _threads()
    (journal,) = (tmp_path / "run" / "work").glob("*.journal")
    assert [e["row"]["key"] for e in read_journal(journal)] == ["00000000", "00000001", "00000002"]
    assert not list((tmp_path / "run" / "leases").iterdir())


def test_per_image_method_prefetch_and_deferred_encode(tmp_path):
    """`nst invert`'s task: inputs decoded ahead (a corrupt one is that sample's failed_decode row),
    every image member encoded in the writer thread."""
    from pipeline.config import build_config
    from pipeline.io.reader import read_data
    from pipeline.methods.invert import InvertConfig
    from pipeline.tasks.invert import InvertTask

    data = tmp_path / "data"
    for i in (0, 2):
        picture(data / f"p{i}.png", (40, 32), seed=i)
    (data / "p1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    cfg = build_config(InvertConfig, preset=None, overrides={"size": 32, "iterations": 5},
                       sets=["invert_layers=block1_conv2"])
    task = InvertTask(cfg, read_data(data))
    out = tmp_path / "run"
    assert execute(task, RunOptions(out=out, shard_size=3, device="cpu", progress=False)) == EXIT_SAMPLES_FAILED
    rows = manifest_rows(out)
    assert [r["status"] for r in rows] == ["ok", "failed_decode", "ok"] and "p1.png" in rows[1]["error"]
    samples = tar_samples(out)
    assert sorted(samples) == ["00000000", "00000002"]
    for members in samples.values():
        assert set(members) == {"block1_conv2.png", "sheet.png", "json"}
        assert Image.open(io.BytesIO(members["sheet.png"])).width > 32
    assert not _threads()
