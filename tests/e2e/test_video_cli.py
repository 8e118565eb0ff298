"""`nst video` end to end: a real process killed mid-clip resumes to the very frames of a straight run;
the mp4 and per-video record; bad inputs (one line and exit 2, or a failed_decode row)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
from PIL import Image

from dataset_util import ENV, NST, manifest_rows, nst, picture, tar_samples
from pipeline.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_SAMPLES_FAILED

ROOT = Path(__file__).resolve().parents[2]
FRAMES = 8


def make_clip(path: Path, frames: int = FRAMES, wh=(40, 30), fps: int = 8) -> Path:
    from pipeline.io.clips import pan_zoom
    from pipeline.io.video import write_mp4

    photo = Image.open(ROOT / "examples" / "content" / "astronaut.jpg")
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_mp4(path, pan_zoom(photo, frames, wh), fps)


def video_cmd(clip: Path, style: Path, out: Path, *extra: str) -> list[str]:
    return [NST, "video", str(clip), "--style", str(style), "--out", str(out), "--size", "40",
            "--iterations", "4", "--later-iterations", "12", "--deterministic", "--device", "cpu",
            "--no-progress", *extra]


def _durable(out: Path) -> int:
    """Frames durable so far: committed manifest rows plus journal lines of the shard in progress."""
    n = sum(len(p.read_text().splitlines()) for p in (out / "manifests").glob("*.jsonl")) if out.exists() else 0
    return n + (sum(len(p.read_bytes().splitlines()) for p in (out / "work").glob("*.journal"))
                if out.exists() else 0)


def _frames(out: Path) -> dict[str, bytes]:
    return {k: m["png"] for k, m in tar_samples(out).items()}


def test_kill_mid_clip_then_resume_gives_the_frames_of_a_straight_run(tmp_path):
    clip = make_clip(tmp_path / "in" / "pan.mp4")
    style = picture(tmp_path / "style.png", seed=5)

    straight = tmp_path / "straight"
    done = subprocess.run(video_cmd(clip, style, straight), env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == EXIT_OK, done.stderr[-3000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(video_cmd(clip, style, killed), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and _durable(killed) < 3:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = _durable(killed)
    assert 3 <= at_kill < FRAMES, at_kill
    assert not (killed / "videos").exists()  # no mp4 before every frame is committed

    resumed = subprocess.run(video_cmd(clip, style, killed), env=ENV, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == EXIT_OK, resumed.stderr[-3000:]

    a, b = _frames(straight), _frames(killed)
    assert sorted(a) == [f"pan_{t:06d}" for t in range(FRAMES)]
    assert a == b  # byte-identical frames
    rows = {r["key"]: r for r in manifest_rows(killed)}
    first_resumed = f"pan_{at_kill:06d}"
    # the frame after the kill was made in the second process, from the committed previous frame
    assert rows[first_resumed]["worker"]["pid"] != rows["pan_000000"]["worker"]["pid"]
    assert rows[first_resumed]["temporal"] is True and rows[first_resumed]["start"] == "warped"
    assert all(rows[f"pan_{t:06d}"]["warping_error"] >= 0 for t in range(1, FRAMES))

    # the clip as an mp4 of every frame, and its record
    from pipeline.io.video import decode

    mp4 = killed / "videos" / "pan.mp4"
    back = decode(mp4)
    assert len(back.frames) == FRAMES and str(back.fps) == "8"
    first = np.asarray(Image.open(io.BytesIO(a["pan_000000"])).convert("RGB"), np.float32)
    assert np.abs(back.frames[0][: first.shape[0] // 2 * 2, : first.shape[1] // 2 * 2].astype(np.float32)
                  - first[: first.shape[0] // 2 * 2, : first.shape[1] // 2 * 2]).mean() < 12
    record = json.loads((killed / "videos" / "pan.json").read_text())
    errors = [rows[f"pan_{t:06d}"]["warping_error"] for t in range(1, FRAMES)]
    assert record["frames"] == FRAMES and abs(record["warping_error"] - float(np.mean(errors))) < 1e-5
    assert record["temporal_frames"] == FRAMES - 1
    assert [p.name for p in (killed / "videos").iterdir() if p.name.startswith(".")] == []  # no temporaries

    # `nst export` writes the frames under the clip's name and copies the mp4
    to = tmp_path / "export"
    exported = nst("export", killed, "--to", to)
    assert exported.returncode == EXIT_OK, exported.stderr
    assert sorted(p.name for p in (to / "pan").iterdir()) == [f"{t:06d}.png" for t in range(FRAMES)]
    assert (to / "pan.mp4").read_bytes() == mp4.read_bytes()

    # `nst report` shows the clip's warping error and a strip of consecutive frames
    report = nst("report", killed)
    assert report.returncode == EXIT_OK, report.stderr
    page = (killed / "report" / "index.html").read_text()
    assert "<h2>Videos</h2>" in page and f"warping error {record['warping_error']:.4g}" in page
    strip = Image.open(killed / "report" / "full" / "strip-pan.png")
    assert strip.size == (6 * 40 + 5 * 2, 30)


def test_a_corrupt_file_or_one_without_video_is_one_line_and_exit_2(tmp_path):
    style = picture(tmp_path / "style.png", seed=5)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    audio = tmp_path / "tone.wav"
    import wave

    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes((np.sin(np.arange(8000) / 5) * 3000).astype("<i2").tobytes())
    for path, words in ((corrupt, "cannot decode video"), (audio, "no video stream")):
        r = subprocess.run(video_cmd(path, style, tmp_path / f"run-{path.stem}"), env=ENV, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == EXIT_BAD_INPUT, r.stderr
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and words in lines[0] and str(path) in lines[0], r.stderr
        assert "Traceback" not in r.stderr


def test_a_folder_with_a_bad_file_records_failed_decode_and_finishes_the_rest(tmp_path):
    style = picture(tmp_path / "style.png", seed=5)
    data = tmp_path / "clips"
    make_clip(data / "good.mp4", frames=3)
    (data / "broken.mp4").write_bytes(b"not a video at all" * 50)
    out = tmp_path / "run"
    r = subprocess.run(video_cmd(data, style, out), env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == EXIT_SAMPLES_FAILED, r.stderr[-3000:]
    rows = {row["key"]: row for row in manifest_rows(out)}
    assert rows["broken_000000"]["status"] == "failed_decode"
    assert "broken.mp4" in rows["broken_000000"]["error"]
    assert [rows[f"good_{t:06d}"]["status"] for t in range(3)] == ["ok"] * 3
    assert len(list((out / "shards").glob("*.tar"))) == 2  # one shard per clip
    assert (out / "videos" / "good.mp4").exists() and not (out / "videos" / "broken.mp4").exists()


def test_two_clips_on_two_workers_each_clip_held_by_one_worker(tmp_path):
    style = picture(tmp_path / "style.png", seed=5)
    data = tmp_path / "clips"
    make_clip(data / "a.mp4", frames=4)
    make_clip(data / "b.mp4", frames=3, wh=(32, 24))
    out = tmp_path / "run"
    r = subprocess.run(video_cmd(data, style, out, "--devices", "2"), env=ENV, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == EXIT_OK, r.stderr[-3000:]
    rows = manifest_rows(out)
    assert sorted(row["key"] for row in rows) == [f"a_{t:06d}" for t in range(4)] + [f"b_{t:06d}" for t in range(3)]
    by_shard: dict[str, set] = {}
    for row in rows:
        by_shard.setdefault(row["shard"], set()).add((row["extra"]["video"], row["worker"]["pid"]))
    assert sorted(len(v) for v in by_shard.values()) == [1, 1]  # one clip per shard, one worker per clip
    assert all(row["temporal"] for row in rows if row["extra"]["frame"] > 0)
    assert sorted(p.name for p in (out / "videos").glob("*.mp4")) == ["a.mp4", "b.mp4"]
