"""kill -9 a 2-worker `nst stylize` at random moments, resume each time, check nothing is lost or duplicated.

The kill hits the whole process group (both Lightning ranks) at a random point
once some progress is journaled, so it lands mid-sample, mid-commit or between
shards. The final output must hold every planned sample exactly once, decodable,
with manifests, commit records and `nst verify` consistent.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import time

from PIL import Image

from dataset_util import ENV, NST, TINY, manifest_rows, nst, picture, tar_samples
from pipeline.errors import EXIT_OK

N_SAMPLES = 12
KILLS = 3


def _journaled(out) -> int:
    """Samples durable so far: committed manifest rows plus journal lines of shards in progress."""
    n = sum(len(p.read_text().splitlines()) for p in (out / "manifests").glob("*.jsonl"))
    return n + sum(len(p.read_bytes().splitlines()) for p in (out / "work").glob("*.journal"))


def test_kill9_and_resume_loses_and_duplicates_nothing(tmp_path):
    seed = int(os.environ.get("NST_KILL_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    print(f"kill seed {seed}")
    data = tmp_path / "data"
    for i in range(N_SAMPLES):
        picture(data / f"img{i:02d}.png", (32 + 2 * (i % 3), 32), seed=i)
    style = picture(tmp_path / "style.png", seed=77)
    out = tmp_path / "run"
    cmd = [NST, "stylize", str(data), "--style", str(style), "--out", str(out), "--devices", "2",
           "--shard-size", "5", *TINY, "--iterations", "40",
           "--set", "batch_size=1"]  # one sample per step: kills land between fine-grained commits
    kills = []
    for k in range(KILLS):
        done_before = _journaled(out) if out.exists() else 0
        proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        # wait for some new durable progress (so every kill interrupts real work), then a random delay
        target = done_before + rng.randint(1, 3)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and _journaled(out if out.exists() else tmp_path) < target:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.5))  # shorter than the rest of the run (a sample takes ~0.5 s)
        if proc.poll() is not None:
            kills.append("finished before the kill")
            break
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills.append(_journaled(out))
    print(f"durable samples at each kill: {kills}")
    assert any(isinstance(k, int) and k < N_SAMPLES for k in kills), "no kill landed mid-run"

    final = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert final.returncode == EXIT_OK, final.stderr[-3000:]

    rows = manifest_rows(out)
    assert sorted(r["index"] for r in rows) == list(range(N_SAMPLES))
    assert all(r["status"] == "ok" for r in rows)
    samples = tar_samples(out)  # asserts no key twice, within or across shards
    assert sorted(samples) == sorted(r["key"] for r in rows)
    for key, members in samples.items():
        Image.open(io.BytesIO(members["png"])).load()
        assert json.loads(members["json"])["key"] == key
    for commit in (out / "commits").glob("*.json"):
        rec = json.loads(commit.read_text())
        assert rec["counts"] == {"ok": rec["manifest"]["rows"]}
        assert rec["tar"]["members"] == 2 * rec["manifest"]["rows"]
    assert len(list((out / "commits").glob("*.json"))) == 3
    assert not list((out / "work").glob("stylized-*")) and not list((out / "leases").iterdir())
    v = nst("verify", out)
    assert v.returncode == EXIT_OK, v.stderr
