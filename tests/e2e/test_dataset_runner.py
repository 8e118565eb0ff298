"""The runner is task-agnostic: a second real Task (re-encode images as PNG) runs through the same
plan/lease/writer/commit path; a stop request between samples keeps finished work and resumes.
Two `nst stylize` commands started by hand on one DIR share it without doing anything twice."""

from __future__ import annotations

import io
import subprocess

from PIL import Image

from dataset_util import ENV, NST, TINY, FileTask, manifest_rows, nst, picture, pictures_and_style, tar_samples
from pipeline.errors import EXIT_OK, EXIT_PREEMPTED
from pipeline.io.images import encode_image, load_image
from pipeline.run.execute import stop
from pipeline.run.execute.options import RunOptions
from pipeline.run.execute.runner import execute
from pipeline.run.task import SampleResult, Task, failed


class ReencodeTask(FileTask, Task):
    """Decode each input and store it as PNG: real work, no network, for exercising the runner."""

    def __init__(self, files, stop_at=None):
        self.files, self.stop_at, self.seen = files, stop_at, []

    def process(self, samples):
        out = []
        for s in samples:
            self.seen.append(s.key)
            try:
                out.append(SampleResult(s.key, "ok", {"png": encode_image(load_image(s.source))}, {"w": 1}))
            except Exception as exc:  # noqa: BLE001
                out.append(failed(s, exc))
            if s.index == self.stop_at:
                stop.request_stop("test")
        return out


def test_stop_between_samples_keeps_work_and_resume_finishes(tmp_path):
    files = [picture(tmp_path / "in" / f"{i}.png", seed=i) for i in range(5)]
    out = tmp_path / "run"
    opts = RunOptions(out=out, shard_size=3, device="cpu", progress=False)
    first = ReencodeTask(files, stop_at=1)
    try:
        assert execute(first, opts) == EXIT_PREEMPTED
    finally:
        stop.reset()
    assert first.seen == ["00000000", "00000001"]
    assert not list((out / "leases").iterdir())  # lease released on stop
    assert not list((out / "commits").iterdir())  # shard 0 not complete, so not committed
    second = ReencodeTask(files)
    assert execute(second, opts) == EXIT_OK
    assert second.seen == ["00000002", "00000003", "00000004"]  # nothing redone
    samples = tar_samples(out)
    assert sorted(samples) == [f"{i:08d}" for i in range(5)]
    for i, f in enumerate(files):
        assert Image.open(io.BytesIO(samples[f"{i:08d}"]["png"])).tobytes() == Image.open(f).tobytes()
    assert sorted((out / "shards").iterdir())[0].name == "png-000000.tar"
    assert nst("verify", out).returncode == EXIT_OK


def test_two_commands_by_hand_share_one_run_dir(tmp_path):
    data, style, out = pictures_and_style(tmp_path, 6, "x", style_seed=9)
    cmd = [NST, "stylize", str(data), "--style", str(style), "--out", str(out), "--shard-size", "1", *TINY]
    procs = [subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [EXIT_OK, EXIT_OK], [p.stderr.read()[-2000:] for p in procs]
    rows = manifest_rows(out)
    assert sorted(r["index"] for r in rows) == list(range(6))
    assert len({r["worker"]["pid"] for r in rows}) == 2  # both commands took shards
    assert sorted(tar_samples(out)) == [r["key"] for r in sorted(rows, key=lambda r: r["index"])]
    assert nst("verify", out).returncode == EXIT_OK
