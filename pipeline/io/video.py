"""Video files in and out through PyAV (FFmpeg): decode to RGB frames at a steady rate, encode H.264.

Why here: `nst video` plans one sample per frame, so a clip is decoded (to the working
size, in memory: the clips it is for are short) both when a run is planned and when
a worker stylizes it. Decoding is deterministic, so both see the same frames.

A variable or unwanted frame rate is resampled to a steady one (`fps`, else the
stream's average rate): output frame k shows the last source frame whose timestamp
is at or before k/fps. Anything FFmpeg cannot read, a file without a video stream,
or a stream without frames raises `DecodeError` with one line naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from pipeline.errors import BadInput, DecodeError, InputNotFound

VIDEO_EXTS = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".gif")


@dataclass
class Clip:
    """Decoded frames (H, W, 3) uint8 RGB at a steady `fps`, and how they were obtained."""

    frames: list[np.ndarray]
    fps: Fraction                # the rate of `frames`
    source_fps: Fraction | None  # the stream's average rate
    variable_rate: bool          # the source's frame intervals were not all equal
    resampled: bool              # frames were dropped or repeated to reach `fps`
    source_frames: int           # frames the stream decoded to
    source_size: tuple[int, int]  # (W, H) of the stream

    def facts(self) -> dict:
        """What a run records about the decode (JSON-serialisable)."""
        return {"fps": str(self.fps), "source_fps": str(self.source_fps) if self.source_fps else None,
                "variable_rate": self.variable_rate, "resampled": self.resampled,
                "source_frames": self.source_frames, "source_size": list(self.source_size),
                "frames": len(self.frames)}


def is_video_name(name: str) -> bool:
    return name.lower().endswith(VIDEO_EXTS)


def video_inputs(data: str | os.PathLike) -> tuple[str, list[tuple[str, str]]]:
    """DATA of `nst video` -> (root, [(absolute path, path relative to root)]): a video file (root: its
    folder), a folder of videos (searched recursively, sorted), or a .txt list (one path a line,
    relative to the list's folder)."""
    p = Path(data)
    if not p.exists():
        raise BadInput(f"DATA not found: {str(p)!r}")
    if p.is_dir():
        found = sorted(str(f.relative_to(p)) for f in p.rglob("*") if f.is_file() and is_video_name(f.name))
        if not found:
            raise BadInput(f"no video files ({', '.join(VIDEO_EXTS)}) in {str(p)!r}")
        return os.path.abspath(p), [(os.path.abspath(p / rel), rel) for rel in found]
    if p.suffix.lower() == ".txt":
        lines = [ln.strip() for ln in p.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        if not lines:
            raise BadInput(f"video list {str(p)!r} is empty")
        return os.path.abspath(p.parent), [(os.path.abspath(p.parent / ln), ln) for ln in lines]
    return os.path.abspath(p.parent), [(os.path.abspath(p), p.name)]


def _open(path: str):
    import av

    if not os.path.exists(path):
        raise InputNotFound(f"video not found: {path!r}")
    try:
        return av.open(path)
    except av.error.FFmpegError as exc:
        raise DecodeError(f"cannot decode video {path!r}: {_reason(exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DecodeError(f"cannot decode video {path!r}: {exc}".splitlines()[0]) from None


def _reason(exc: BaseException) -> str:
    msg = getattr(exc, "strerror", None) or str(exc)
    return (msg.splitlines() or [type(exc).__name__])[0]


def decode(path: str | os.PathLike, fps: float | None = None, max_frames: int | None = None,
           size: Callable[[tuple[int, int]], tuple[int, int]] | None = None) -> Clip:
    """The first video stream of `path` as RGB frames at a steady rate.

    fps: the output rate (None: the stream's average rate; a variable-rate stream is then
    resampled to it). max_frames: stop after this many output frames. size(wh) -> (w, h):
    each frame is resized (Lanczos) to it as it is decoded, so only working-size frames
    are kept in memory.
    """
    import av
    from PIL import Image

    path = str(path)
    container = _open(path)
    try:
        streams = container.streams.video
        if not streams:
            raise DecodeError(f"no video stream in {path!r}")
        stream = streams[0]
        rate = stream.average_rate or stream.guessed_rate
        source_fps = Fraction(rate) if rate else None
        out_fps = Fraction(fps).limit_denominator(1001) if fps else source_fps
        times, frames = [], []
        last_time = None
        source_size = (stream.codec_context.width, stream.codec_context.height)
        intervals = set()
        decoded = 0
        try:
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else decoded / float(source_fps or 25)
                if last_time is not None:
                    intervals.add(round(t - last_time, 4))
                last_time = t
                decoded += 1
                if out_fps is None:  # no rate at all: keep every frame
                    out_fps = Fraction(25)
                times.append(t)
                image = frame.to_image()
                source_size = image.size
                if size is not None:
                    wh = size(image.size)
                    if wh != image.size:
                        image = image.resize(wh, Image.Resampling.LANCZOS)
                frames.append(np.asarray(image.convert("RGB")))
                if max_frames is not None and fps is None and len(frames) >= max_frames:
                    break
        except av.error.FFmpegError as exc:
            if not frames:
                raise DecodeError(f"cannot decode video {path!r}: {_reason(exc)}") from None
            # a damaged tail: keep what decoded (recorded by the frame count)
        if not frames:
            raise DecodeError(f"no frames in the video stream of {path!r}")
        variable = len(intervals) > 1 and (max(intervals) - min(intervals)) > 1e-3
        out, resampled = frames, False
        if fps is not None or variable:
            out, resampled = _resample(times, frames, float(out_fps), max_frames)
        elif max_frames is not None:
            out = frames[:max_frames]
        return Clip(out, out_fps, source_fps, variable, resampled, decoded, tuple(source_size))
    finally:
        container.close()


def _resample(times: list[float], frames: list[np.ndarray], fps: float,
              max_frames: int | None) -> tuple[list[np.ndarray], bool]:
    """Frames at t0 + k/fps: each the last source frame at or before that time."""
    t0, end = times[0], times[-1]
    n = int(np.floor((end - t0) * fps + 1e-6)) + 1
    if max_frames is not None:
        n = min(n, max_frames)
    order = np.argsort(np.asarray(times), kind="stable")
    sorted_times = np.asarray(times)[order]
    picks = []
    for k in range(n):
        i = int(np.searchsorted(sorted_times, t0 + k / fps + 1e-6, side="right")) - 1
        picks.append(int(order[max(i, 0)]))
    resampled = len(picks) != len(frames) or picks != list(range(len(frames)))
    return [frames[i] for i in picks], resampled


def _even(frame: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sides: drop a last odd row/column."""
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


def encode_mp4(frames: list[np.ndarray], fps: Fraction | float | str, codec: str = "libx264",
               crf: int = 18) -> bytes:
    """RGB frames -> the bytes of an .mp4 (H.264, yuv420p, `fps` frames per second)."""
    import io

    import av

    if not frames:
        raise ValueError("no frames to encode")
    rate = Fraction(str(fps)).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=rate)
        h, w = _even(frames[0]).shape[:2]
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "medium"}
        for arr in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(_even(arr)), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def write_mp4(path: str | os.PathLike, frames: list[np.ndarray], fps, codec: str = "libx264") -> Path:
    """Encode and write atomically (temporary name beside it, fsync, rename): a reader never sees half an mp4."""
    from pipeline.io.atomic import atomic_write_bytes

    path = Path(path)
    atomic_write_bytes(path, encode_mp4(frames, fps, codec))
    return path
