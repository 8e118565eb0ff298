"""The dataset Task for `nst dream`: the dream, and with zoom_frames the frames plus an animation."""

from __future__ import annotations

from functools import partial

from pipeline.io.images import encode_image
from pipeline.pixels import to_pil, to_tensor
from pipeline.run.task import Sample
from pipeline.methods.dream import dream_frames, encode_animation
from pipeline.tasks.base import PerImageTask, check_pixels


class DreamTask(PerImageTask):
    """Members: {fmt} (the dream), frame{i:04d}.{fmt} and gif/webp when zoom_frames > 0, json."""

    name = "dream"
    shard_prefix = "dream"

    def produce_image(self, original, sample: Sample, fmt: str):
        objective: list[float] = []
        frames = dream_frames(self.backbone, self.cfg, to_tensor(original), sample.seed,
                              on_log=lambda done, total, rows: objective.append(rows[0]["total"]))
        images = []
        for f in frames:
            check_pixels(f)
            images.append(to_pil(f))
        members = {fmt: partial(encode_image, images[0], fmt)}  # encoded in the writer thread
        if self.cfg.zoom_frames:
            for i, img in enumerate(images):
                members[f"frame{i:04d}.{fmt}"] = partial(encode_image, img, fmt)
            members[self.cfg.animation_format] = partial(encode_animation, images, self.cfg.animation_format,
                                                         self.cfg.frame_ms)
        meta = {"objective_first": objective[0], "objective_last": objective[-1],
                "iterations": len(objective), "frames": len(images), "size": list(images[0].size)}
        return members, meta
