"""The dataset-stylize Task: plans (content, style) pairs and stylizes one sample at a time.

Style assignment policies (recorded in the plan):
- one:    every content uses the whole style list (one style, or a blend of several);
- random: one style per content, drawn from the per-sample seed (reproducible);
- cycle:  style i mod n for content i;
- all:    every content with every style (contents x styles samples).
A CSV/JSON-Lines row with a `style` column uses that style instead.
"""

from __future__ import annotations

import json
import math
import time

import torch

from pipeline.config import StyleConfig
from pipeline.errors import BadInput
from pipeline.io.images import encode_image, load_image, to_pil
from pipeline.io.reader import InputRow
from pipeline.run.task import Planned, Sample, SampleResult, Task, NonFiniteResult, failed, sample_seed

ASSIGN_POLICIES = ("one", "random", "cycle", "all")


def assign_styles(rows: list[InputRow], styles: list[str], policy: str, seed: int) -> list[Planned]:
    """The ordered (content, styles) plan for an assignment policy."""
    if policy not in ASSIGN_POLICIES:
        raise BadInput(f"--assign must be one of {', '.join(ASSIGN_POLICIES)}, got {policy!r}")
    if not styles and any(r.style is None for r in rows):
        missing = next(r.path for r in rows if r.style is None)
        raise BadInput(f"no --style given and input {missing!r} has no style column")
    out: list[Planned] = []
    for i, row in enumerate(rows):
        extra = {"assign": policy if row.style is None else "row"}
        if row.key:
            extra["source_key"] = row.key
        if row.style is not None:
            out.append(Planned(row.path, (row.style,), extra))
        elif policy == "one":
            out.append(Planned(row.path, tuple(styles), extra))
        elif policy == "cycle":
            out.append(Planned(row.path, (styles[i % len(styles)],), extra))
        elif policy == "random":
            # drawn from the content's position, so the choice is fixed by the plan
            out.append(Planned(row.path, (styles[sample_seed(seed, i) % len(styles)],), extra))
        else:
            out.extend(Planned(row.path, (s,), extra) for s in styles)
    return out


class StylizeTask(Task):
    """Gatys style transfer over a dataset, one sample per `process` call."""

    name = "stylize"
    shard_prefix = "stylized"

    def __init__(self, cfg: StyleConfig, rows: list[InputRow], styles: list[str], assign: str = "one"):
        self.cfg, self.rows, self.styles, self.assign = cfg, rows, styles, assign
        self.batch_size = 1
        self._backbone = None
        self._targets = None
        self._style_cache: dict = {}

    def identity(self) -> dict:
        return {"method": "stylize", "assign": self.assign, **self.cfg.to_dict()}

    def seed(self) -> int:
        return int(self.cfg.seed)

    def weights_digest(self) -> str:
        from pipeline.models.weights import load_backbone_state

        return load_backbone_state(self.cfg.network, self.cfg.weights)[1]["state_digest"]

    def plan(self) -> list[Planned]:
        return assign_styles(self.rows, self.styles, self.assign, self.cfg.seed)

    def setup(self, device: str) -> None:
        from pipeline.models.vgg import Backbone
        from pipeline.tasks.stylize import StyleTargets

        self.device = device
        self._backbone = Backbone(self.cfg.network, self.cfg.pooling, self.cfg.weights, device)
        self._targets = StyleTargets(self._backbone, self.cfg, max_entries=64)

    def _style(self, path: str):
        """Decoded style images are kept per worker; Gram targets are cached by StyleTargets."""
        if path not in self._style_cache:
            self._style_cache[path] = load_image(path)
        return self._style_cache[path]

    def process(self, samples: list[Sample]) -> list[SampleResult]:
        return [self._one(s) for s in samples]

    def _one(self, sample: Sample) -> SampleResult:
        from pipeline.tasks.stylize import StylizeJob, content_size, stylize_batch

        start = time.perf_counter()
        try:
            content = load_image(sample.source)
            styles = [(p, self._style(p)) for p in sample.styles]
            torch.manual_seed(sample.seed % (1 << 63))
            pixels, result = stylize_batch(self._backbone, self.cfg, self._targets,
                                           StylizeJob([content], styles, [sample.seed]))
            losses = result.losses[0]
            if not all(math.isfinite(v) for v in losses.values()) or not torch.isfinite(pixels).all():
                raise NonFiniteResult(f"non-finite loss or pixels (total loss {losses.get('total')})")
            image = to_pil(pixels)
            data = encode_image(image, self.cfg.output_format)
        except Exception as exc:  # noqa: BLE001 - recorded as a failed row, the run goes on
            return failed(sample, exc)
        seconds = round(time.perf_counter() - start, 3)
        meta = {
            "losses": losses,
            "iterations": result.evaluations,
            "seconds": seconds,
            "size": list(image.size),
            "content_size": list(content_size(content, self.cfg)),
        }
        record = {
            "key": sample.key, "index": sample.index, "source": sample.source, "styles": list(sample.styles),
            "seed": sample.seed, "assign": sample.extra.get("assign"), "params": self.cfg.to_dict(),
            "device": self.device, "weights_digest": self._backbone.weights_digest, **meta,
        }
        if "source_key" in sample.extra:
            record["source_key"] = sample.extra["source_key"]
        members = {self.cfg.output_format: data, "json": json.dumps(record, sort_keys=True).encode()}
        return SampleResult(sample.key, "ok", members, meta)
