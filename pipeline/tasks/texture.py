"""The dataset Task for `nst texture`: `count` textures per source, each from its own seed."""

from __future__ import annotations

import functools

from pipeline.io.images import encode_image, load_image
from pipeline.pixels import to_pil
from pipeline.run.task import Planned, Sample
from pipeline.tasks.base import MethodTask, check_pixels
from pipeline.methods.texture import TextureConfig, synthesize


class TextureTask(MethodTask):
    """One sample per (source, copy); the per-sample seed makes each copy differ."""

    name = "texture"
    shard_prefix = "texture"

    def __init__(self, cfg: TextureConfig, sources: list[str]):
        super().__init__(cfg)
        self.sources = sources
        self._images: dict = {}
        self._targets = None

    def plan(self) -> list[Planned]:
        return [Planned(None, (src,), {"copy": j}) for src in self.sources for j in range(self.cfg.count)]

    def setup(self, device: str) -> None:
        from pipeline.methods.stylize import StyleTargets

        super().setup(device)
        self._targets = StyleTargets(self.backbone, self.cfg, max_entries=64)

    def produce(self, sample: Sample):
        path = sample.styles[0]
        if path not in self._images:
            self._images[path] = load_image(path)
        pixels, result = synthesize(self.backbone, self.cfg, path, self._images[path], sample.seed,
                                    targets=self._targets)
        check_pixels(pixels)
        image = to_pil(pixels)
        meta = {"losses": result.losses[0], "iterations": result.evaluations, "size": list(image.size)}
        return {self.cfg.output_format: functools.partial(encode_image, image, self.cfg.output_format)}, meta
