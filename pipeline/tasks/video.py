"""The dataset Task of `nst video`: one video is one shard, its frames are the samples, in order.

Frame t starts from frame t-1's output, so a clip's frames are one unit of work
(`whole_groups`: the planner makes each clip exactly one shard, which one worker holds)
and are processed in plan order. The previous output is always the frame *as committed*
(its PNG decoded back): a resumed run reads frame t-1 from the shard's durable prefix
(`begin_shard`) and continues with the very bytes a run that was never stopped had.

Keys are `{video-key}_{frame:06d}`; each sample holds the stylized frame and its JSON
(losses, evaluations, start, the flow's share of reliable pixels, the warping error
against the previous output, seconds). A file that does not decode is planned as one
sample that fails with `failed_decode` (or, for a single file, refused at planning).
"""

from __future__ import annotations

import io
import math
import time

import numpy as np
from PIL import Image

from pipeline.errors import DecodeError
from pipeline.io.images import encode_image
from pipeline.pixels import to_pil
from pipeline.run.task import Planned, Sample
from pipeline.tasks.base import MethodTask, check_pixels
from pipeline.tasks.stylize import path_key


def frame_key(video_key: str, t: int) -> str:
    return f"{video_key}_{t:06d}"


class VideoTask(MethodTask):
    """Members per frame: png (the stylized frame) and json."""

    name = "video"
    shard_prefix = "video"
    whole_groups = True

    def finish(self, root, device: str, show_progress: bool) -> list[str]:
        """Each finished clip's DIR/videos/{key}.mp4 and record (its warping error)."""
        from pipeline.tasks.video_finish import finish_videos

        return [f"nst video: {root / v['mp4']} ({v['frames']} frames at {v['fps']} fps, warping error "
                f"{v['warping_error']})" for v in finish_videos(root)]

    def __init__(self, cfg, videos: list[tuple[str, str]], styles: list[str], refuse_undecodable: bool = False,
                 root: str | None = None):
        super().__init__(cfg)
        self.videos, self.styles, self.root = videos, styles, root
        self.refuse_undecodable = refuse_undecodable  # `nst video FILE`: one line and exit 2
        self._clip_of: tuple | None = None           # (path, Clip, ClipFlow) of the clip in hand
        self._last: tuple | None = None              # (video key, frame, uint8 frame as committed)
        self._targets = None
        self._style_images: list | None = None

    def record_fields(self) -> dict:
        return {"method": self.name}

    def data_root(self) -> str | None:
        return self.root

    # -- planning ------------------------------------------------------------------------------
    def decode(self, path: str):
        from pipeline.io.video import decode

        return decode(path, fps=self.cfg.fps, max_frames=self.cfg.max_frames, size=self.cfg.working_size)

    def plan(self):
        for path, rel in self.videos:
            vkey = path_key(rel)
            try:
                clip = self.decode(path)
            except DecodeError as exc:
                if self.refuse_undecodable:
                    raise
                yield Planned(path, tuple(self.styles), {"video": vkey, "frame": 0, "frames": 0,
                                                          "decode_error": str(exc)}, rel, frame_key(vkey, 0))
                continue
            facts = clip.facts()
            extra = {"video": vkey, "frames": facts["frames"], "fps": facts["fps"],
                     "variable_rate": facts["variable_rate"], "resampled": facts["resampled"]}
            for t in range(len(clip.frames)):
                yield Planned(path, tuple(self.styles), {**extra, "frame": t}, rel, frame_key(vkey, t))

    def shard_key(self, sample: Sample):
        return sample.extra["video"]

    # -- working -------------------------------------------------------------------------------
    def setup(self, device: str) -> None:
        from pipeline.io.images import load_image
        from pipeline.methods.stylize import StyleTargets

        super().setup(device)
        self._targets = StyleTargets(self.backbone, self.cfg, max_entries=8)
        self._style_images = [(p, load_image(p)) for p in self.styles]

    def _clip(self, path: str):
        from pipeline.engine.flow import ClipFlow

        if self._clip_of is None or self._clip_of[0] != path:
            self._clip_of = None  # drop the last clip before decoding the next
            clip = self.decode(path)
            self._clip_of = (path, clip, ClipFlow(clip.frames, self.cfg.flow_preset, self.cfg.weight_radius))
        return self._clip_of[1], self._clip_of[2]

    def begin_shard(self, samples, todo, rows, read) -> None:
        """Resume (or --retry-failed): the output of the frame before the first one to do, as committed."""
        self._last = None
        t = todo[0].extra.get("frame", 0) if todo else 0
        before = next((s for s in samples if s.extra.get("frame") == t - 1), None) if t > 0 else None
        if before is None or rows.get(before.key, {}).get("status") != "ok":
            return  # a clip from its start, or after a failed frame: no previous output
        data = read(before.key).get("png")
        if data is not None:
            self._last = (before.extra["video"], before.extra["frame"], _decoded(data))

    def produce(self, sample: Sample) -> tuple[dict, dict]:
        from pipeline.engine.flow import warping_error
        from pipeline.methods.video import content_frame, stylize_frame

        e = sample.extra
        if "decode_error" in e:
            raise DecodeError(e["decode_error"])
        vkey, t = e["video"], e["frame"]
        if t == 0:
            self._last = None
        clip, flows = self._clip(sample.source)
        if len(clip.frames) != e["frames"]:
            raise DecodeError(f"video {sample.published_source!r} now decodes to {len(clip.frames)} frames; "
                              f"it had {e['frames']} when the run was planned")
        previous = self._last[2] if self._last is not None and self._last[:2] == (vkey, t - 1) else None
        self._last = None
        flow = None
        flow_seconds = 0.0
        if t > 0:
            start = time.perf_counter()
            flow = flows(t)
            flow_seconds = time.perf_counter() - start
        frame = stylize_frame(self.backbone, self.cfg, self._targets, t, content_frame(clip.frames[t]),
                              self._style_images, sample.seed, previous, flow)
        check_pixels(frame.pixels)
        image = to_pil(frame.pixels)
        data = encode_image(image, "png")
        out = _decoded(data)
        meta = {"losses": frame.result.losses[0], "iterations": frame.evaluations, "start": frame.start,
                "size": list(image.size), "frame": t, "video": vkey}
        if flow is not None:
            meta["reliable"] = round(float(flow[1].mean()), 6)
            meta["flow_seconds"] = round(flow_seconds, 3)
            meta["temporal"] = previous is not None and self.cfg.temporal
            error = warping_error(out, previous, flow[0], flow[1]) if previous is not None else float("nan")
            if math.isfinite(error):
                meta["warping_error"] = error
        self._last = (vkey, t, out)
        return {"png": data}, meta


def _decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
