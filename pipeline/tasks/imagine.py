"""The dataset Task for `nst imagine`: one image per (class, copy) or per channel, plus the run's sheet.

Samples have no input file; the plan lists the targets. With `diversity_weight`
> 0 the copies of one class are rendered together (the diversity term compares
them), so they share a batch: batch_key is the class and batch_size `per_class`.
Channels may be rendered `batch_size` at a time (one view per step for all of
them; the batches are fixed by the plan). Otherwise every sample is rendered
alone and depends on its own seed only.
"""

from __future__ import annotations

import functools
import json
import tarfile
import time
from pathlib import Path

from pipeline.io.images import encode_image
from pipeline.pixels import to_pil
from pipeline.run.task import Planned, Sample
from pipeline.tasks.base import MethodTask, check_pixels


class ImagineTask(MethodTask):
    """Members: {fmt} (the image) and json (target, probability, spectrum slope, std ...)."""

    name = "imagine"
    shard_prefix = "imagine"

    def __init__(self, cfg, sheet_columns: int | None = None):
        super().__init__(cfg)
        self.sheet_columns = sheet_columns  # presentation only: not part of the run's identity
        if cfg.classes:
            self.batch_size = cfg.per_class if cfg.diversity_weight > 0 else 1
        else:  # channels: batch_size of them share one render (faster on a CPU; views shared)
            self.batch_size = cfg.batch_size if isinstance(cfg.batch_size, int) else 1
        self.together = self.batch_size > 1
        self._rendered: dict = {}  # key -> (pixels, meta) or the exception of its batch

    def finish(self, root, device: str, show_progress: bool) -> list[str]:
        """The run's contact sheet, ROOT/imagine/sheet.png."""
        return [f"nst imagine: contact sheet {write_sheet(root, self.cfg.output_format, columns=self.sheet_columns)}"]

    def plan(self) -> list[Planned]:
        if self.cfg.classes:
            from pipeline.models.classes import class_names

            names = class_names()
            return [Planned(None, (), {"target": c, "class_name": names[c], "copy": j})
                    for c in self.cfg.classes for j in range(self.cfg.per_class)]
        return [Planned(None, (), {"target": ch, "layer": self.cfg.layer}) for ch in self.cfg.channels]

    def batch_key(self, sample: Sample):
        return sample.extra["target"] if self.together and self.cfg.classes else None

    def process(self, samples, loaded=None):
        """Copies rendered together are rendered once for the batch (each then records the
        batch's seconds); otherwise each sample renders in `produce`, timed as usual."""
        if self.together:
            start = time.perf_counter()
            try:
                self._rendered = self._render(samples)
                for _, meta in self._rendered.values():
                    meta["batch_seconds"] = round(time.perf_counter() - start, 3)
            except Exception as exc:  # noqa: BLE001 - every sample of the batch records it
                self._rendered = {s.key: exc for s in samples}
        try:
            return super().process(samples, loaded)
        finally:
            self._rendered = {}

    def _render(self, samples) -> dict:
        from pipeline.methods.imagine import imagine
        from pipeline.methods.quality import spectrum_slope, target_probability

        targets = [s.extra["target"] for s in samples]
        losses: list[dict] = []
        pixels, result = imagine(self.backbone, self.cfg, targets, samples[0].seed,
                                 on_log=lambda done, total, rows: losses.__setitem__(slice(None), rows))
        out = {}
        for i, s in enumerate(samples):
            one = pixels[i:i + 1].cpu()
            meta = {"target": targets[i], "objective": result.losses[i],
                    "iterations": result.evaluations, "size": [one.shape[-1], one.shape[-2]],
                    "spectrum_slope": round(spectrum_slope(one), 4),
                    "std": round(float((one / 255.0).std()), 4)}
            if self.cfg.classes:
                meta["class_name"] = s.extra["class_name"]
                meta["p_target"] = round(target_probability(self.backbone, pixels[i:i + 1], targets[i]), 6)
            else:
                meta["layer"] = self.cfg.layer
            out[s.key] = (one, meta)
        return out

    def produce(self, sample: Sample):
        done = self._rendered.get(sample.key)
        if done is None:
            done = self._render([sample])[sample.key]
        if isinstance(done, BaseException):
            raise done
        pixels, meta = done
        check_pixels(pixels)
        image = to_pil(pixels[0])
        return {self.cfg.output_format: functools.partial(encode_image, image, self.cfg.output_format)}, dict(meta)


def sample_label(record: dict) -> str:
    """A sheet label: the class index and name (and copy), or the channel (the title names the layer)."""
    if "class_name" in record:
        copy = record.get("copy", 0)
        return f"{record['target']} {record['class_name']}" + (f" #{copy}" if copy else "")
    return f"{record['target']}"


def write_sheet(root: Path, fmt: str, columns: int | None = None, cell: int | None = None) -> Path:
    """Every ok sample of the run, in plan order, on one contact sheet: ROOT/imagine/sheet.png."""
    from PIL import Image
    import io

    from pipeline.io.atomic import atomic_write_bytes
    from pipeline.io.sheets import contact_sheet

    cells = []
    layer = None
    for tar in sorted((Path(root) / "shards").glob("*.tar")):
        with tarfile.open(tar) as tf:
            members = {m.name: m for m in tf.getmembers()}
            for name in sorted(n for n in members if n.endswith(".json")):
                key = name[: -len(".json")]
                image_member = members.get(f"{key}.{fmt}")
                if image_member is None:
                    continue
                record = json.loads(tf.extractfile(members[name]).read())
                layer = record.get("layer", layer)
                image = Image.open(io.BytesIO(tf.extractfile(image_member).read()))
                image.load()
                cells.append((record["index"], sample_label(record), image))
    cells.sort(key=lambda c: c[0])
    out = Path(root) / "imagine" / "sheet.png"
    title = f"{layer}: channels" if layer else ""
    sheet = contact_sheet([(label, img) for _, label, img in cells], columns=columns, cell=cell, title=title)
    atomic_write_bytes(out, encode_image(sheet, "png"))
    return out
