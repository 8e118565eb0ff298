"""Decode and encode of small generated clips (pipeline/io/video.py, pipeline/io/clips.py): frames,
rates, resampling of a variable frame rate, atomic writes, and the one-line refusals."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import BadInput, DecodeError, InputNotFound
from pipeline.io.clips import pan_zoom
from pipeline.io.video import decode, video_inputs, write_mp4

ROOT = Path(__file__).resolve().parents[3]


def photo_frames(n: int = 8, wh=(48, 36)) -> list[np.ndarray]:
    return pan_zoom(Image.open(ROOT / "examples" / "content" / "astronaut.jpg"), n, wh)


def levels(frames) -> list[int]:
    return [int(round(float(f.mean()))) for f in frames]


def flat_frames(n: int, wh=(32, 24)) -> list[np.ndarray]:
    """Frames of one grey level each (10, 40, 70, ...): which source frame a decoded one is, by its mean."""
    return [np.full((wh[1], wh[0], 3), 10 + 30 * i, np.uint8) for i in range(n)]


def test_pan_zoom_moves_and_zooms_smoothly():
    frames = photo_frames(6)
    assert len(frames) == 6 and frames[0].shape == (36, 48, 3) and frames[0].dtype == np.uint8
    steps = [np.abs(frames[i + 1].astype(float) - frames[i]).mean() for i in range(5)]
    assert all(0 < s < 40 for s in steps)  # every frame moves, none jumps


def test_encode_then_decode_a_small_clip(tmp_path):
    frames = photo_frames(8)
    path = write_mp4(tmp_path / "clip.mp4", frames, 12)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # written atomically, no temporaries left
    clip = decode(path)
    assert len(clip.frames) == 8 and clip.fps == Fraction(12) and clip.source_fps == Fraction(12)
    assert not clip.variable_rate and not clip.resampled and clip.source_size == (48, 36)
    for i, a in enumerate(clip.frames):
        diffs = [np.abs(a.astype(float) - b).mean() for b in frames]
        assert a.shape == frames[i].shape and diffs[i] < 10 and int(np.argmin(diffs)) == i  # H.264, crf 18
    assert clip.facts()["frames"] == 8 and clip.facts()["fps"] == "12"


def test_decode_resizes_resamples_and_stops_at_max_frames(tmp_path):
    path = write_mp4(tmp_path / "flat.mp4", flat_frames(8), 12)
    assert levels(decode(path).frames) == pytest.approx([10 + 30 * i for i in range(8)], abs=2)
    half = decode(path, fps=6)
    assert half.fps == 6 and half.resampled and levels(half.frames) == pytest.approx([10, 70, 130, 190], abs=2)
    assert len(decode(path, max_frames=3).frames) == 3
    small = decode(path, size=lambda wh: (16, 12), max_frames=2)
    assert small.frames[0].shape == (12, 16, 3) and small.source_size == (32, 24)
    # odd sides are cropped to even for H.264 (yuv420p)
    odd = decode(write_mp4(tmp_path / "odd.mp4", flat_frames(2, (33, 25)), 12))
    assert odd.frames[0].shape == (24, 32, 3)


def write_at(path: Path, frames, times_ms: list[int]) -> Path:
    """An mp4 whose frames sit at the given timestamps (a variable frame rate)."""
    import av

    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        for arr, t in zip(frames, times_ms):
            f = av.VideoFrame.from_ndarray(arr, format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_a_variable_frame_rate_is_resampled_to_a_steady_one(tmp_path):
    # frames at 0, 100, 150, 400, 500 ms: gaps of 100, 50, 250, 100
    path = write_at(tmp_path / "vfr.mp4", flat_frames(5), [0, 100, 150, 400, 500])
    clip = decode(path, fps=10)
    assert clip.variable_rate and clip.resampled and clip.fps == 10
    # at 0,100,...,500 ms: the last frame at or before each time
    assert levels(clip.frames) == pytest.approx([10, 40, 70, 70, 100, 130], abs=3)
    steady = decode(path)  # no --fps: resampled to the stream's average rate, recorded
    assert steady.variable_rate and steady.resampled and steady.facts()["variable_rate"] is True


def test_bad_files_raise_one_line_naming_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(DecodeError, match="cannot decode video") as e:
        decode(corrupt)
    assert str(corrupt) in str(e.value) and "\n" not in str(e.value)

    import wave

    audio = tmp_path / "tone.wav"
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(np.zeros(800, "<i2").tobytes())
    with pytest.raises(DecodeError, match="no video stream"):
        decode(audio)

    import av

    empty = tmp_path / "empty.mp4"
    with av.open(str(empty), "w", format="mp4") as c:  # a video stream that never gets a frame
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 32, 24, "yuv420p"
        c.start_encoding()
    with pytest.raises(DecodeError, match="no frames|no video stream") as e:
        decode(empty)
    assert str(empty) in str(e.value)
    zeroed = bytearray(write_mp4(tmp_path / "z.mp4", flat_frames(3), 8).read_bytes())
    at = zeroed.find(b"mdat")  # every frame's bytes zeroed: the container opens, no frame decodes
    size = int.from_bytes(zeroed[at - 4:at], "big")
    zeroed[at + 4:at - 4 + size] = bytes(size - 8)
    (tmp_path / "zeroed.mp4").write_bytes(bytes(zeroed))
    with pytest.raises(DecodeError, match="cannot decode video|no frames"):
        decode(tmp_path / "zeroed.mp4")
    with pytest.raises(InputNotFound):
        decode(tmp_path / "missing.mp4")


def test_video_inputs_from_a_file_a_folder_and_a_list(tmp_path):
    for name in ("b.mp4", "sub/a.mov", "notes.txt", "c.png"):
        (tmp_path / "d" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "d" / name).write_bytes(b"x")
    root, found = video_inputs(tmp_path / "d")
    assert root == str(tmp_path / "d") and [rel for _, rel in found] == ["b.mp4", "sub/a.mov"]
    (tmp_path / "list.txt").write_text("d/b.mp4\n\nd/sub/a.mov\n")
    assert [rel for _, rel in video_inputs(tmp_path / "list.txt")[1]] == ["d/b.mp4", "d/sub/a.mov"]
    assert video_inputs(tmp_path / "d" / "b.mp4")[1] == [(str(tmp_path / "d" / "b.mp4"), "b.mp4")]
    with pytest.raises(BadInput, match="no video files"):
        video_inputs(_empty(tmp_path))
    with pytest.raises(BadInput, match="not found"):
        video_inputs(tmp_path / "nope")


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "none").mkdir()
    return tmp_path / "none"
