"""The dataset-stylize Task: plans (content, style) pairs and stylizes one sample at a time.

Style assignment policies (recorded in the plan):
- one:    every content uses the whole style list (one style, or a blend of several);
- random: one style per content, drawn from the per-sample seed (reproducible);
- cycle:  style i mod n for content i;
- all:    every content with every style (contents x styles samples).
A CSV/JSON-Lines row with a `style` column uses that style instead.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
import time

import torch

from pipeline.config import StyleConfig
from pipeline.errors import FAILED_OOM, BadInput
from pipeline.io.images import encode_image, load_image, to_pil
from pipeline.io.reader import InputRow
from pipeline.run.task import OK, NonFiniteResult, Planned, Sample, SampleResult, failed, sample_seed
from pipeline.tasks.base import MethodTask

ASSIGN_POLICIES = ("one", "random", "cycle", "all")
_STYLE_LOCK = threading.Lock()  # the per-worker style cache is filled from the prefetch thread too


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


def _smaller(key):
    """The out-of-memory retry size of a ((w, h), styles) batch key: 3/4 of each side, or None below 64 px."""
    from pipeline.engine.batching import shrink_by

    size = shrink_by(0.75, minimum=64)(key[0])
    return None if size is None else (size, key[1])


class StylizeTask(MethodTask):
    """Gatys style transfer over a dataset, one sample per `process` call."""

    name = "stylize"
    shard_prefix = "stylized"

    def __init__(self, cfg: StyleConfig, rows: list[InputRow], styles: list[str], assign: str = "one",
                 shard_order: str = "size"):
        if shard_order not in ("size", "input"):
            raise BadInput(f"--shard-order must be size or input, got {shard_order!r}")
        super().__init__(cfg)
        self.rows, self.styles, self.assign = rows, styles, assign
        self.shard_order = shard_order
        # the runner hands process() up to this many samples; "auto" sizes each bucket from free memory
        self.batch_size = cfg.max_batch if cfg.batch_size == "auto" else cfg.batch_size
        self._targets = None
        self._style_cache: dict = {}

    def identity_extra(self) -> dict:
        return {"assign": self.assign}

    def record_fields(self) -> dict:
        return {}  # stylize records predate the "method" field; the digest test keeps their bytes

    def plan(self) -> list[Planned]:
        return assign_styles(self.rows, self.styles, self.assign, self.cfg.seed)

    def setup(self, device: str) -> None:
        from pipeline.methods.stylize import StyleTargets

        super().setup(device)
        self._targets = StyleTargets(self.backbone, self.cfg, max_entries=64)

    def _style(self, path: str):
        """Decoded style images are kept per worker; Gram targets are cached by StyleTargets."""
        with _STYLE_LOCK:
            if path not in self._style_cache:
                self._style_cache[path] = load_image(path)
            return self._style_cache[path]

    def batch_key(self, sample: Sample):
        """(working size, styles) from the content's header: the runner batches equal keys."""
        from pipeline.io.images import image_size
        from pipeline.methods.stylize import working_size

        wh = image_size(sample.source)
        if wh is None:
            return None  # unreadable: its decode fails in `load` and is recorded per sample
        return working_size(wh, self.cfg), tuple(sample.styles)

    def shard_key(self, sample: Sample):
        """--shard-order size: the plan groups samples by `batch_key` (header reads only)."""
        return self.batch_key(sample) if self.shard_order == "size" else None

    def load(self, samples: list[Sample]) -> dict:
        """Decode contents and styles (CPU only; runs in the prefetch thread while the previous
        batch is optimised): key -> (content, styles, working size), or the exception."""
        from pipeline.methods.stylize import content_size

        out: dict = {}
        for sample in samples:
            try:
                content = load_image(sample.source)
                styles = [(p, self._style(p)) for p in sample.styles]
                out[sample.key] = (content, styles, content_size(content, self.cfg))
            except Exception as exc:  # noqa: BLE001 - becomes this sample's failed row in process()
                out[sample.key] = exc
        return out

    def process(self, samples: list[Sample], loaded: dict | None = None) -> list[SampleResult]:
        """Decode (unless `load` did), bucket by (working size, styles), optimise each bucket as one batch.

        Out of memory splits a batch in halves down to single samples, then
        retries the sample at 3/4 of its size (recorded as `oom_resized_from` in
        its metadata) down to 64 px, then records `failed_oom`; any other error
        in a batch is isolated by retrying its samples one by one.
        """
        from pipeline.engine.batching import make_batches, run_with_oom_fallback

        results: dict[str, SampleResult] = {}
        ready = []
        loaded = self.load(samples) if loaded is None else loaded
        for sample in samples:
            item = loaded[sample.key]
            if isinstance(item, BaseException):  # recorded as a failed row, the run goes on
                results[sample.key] = failed(sample, item)
            else:
                ready.append((sample, *item))
        for key, group in make_batches(ready, lambda r: (r[3], r[0].styles), self._bucket_batch):
            try:
                outcomes = run_with_oom_fallback(group, key, self._stylize, shrink=_smaller,
                                                 device=self.device)
            except Exception:  # noqa: BLE001 - isolate the sample that fails
                outcomes = None
            if outcomes is None:
                for item in group:
                    try:
                        results[item[0].key] = self._stylize([item], key)[0]
                    except Exception as exc:  # noqa: BLE001
                        results[item[0].key] = failed(item[0], exc)
                continue
            for o in outcomes:
                if o.status == FAILED_OOM:
                    results[o.item[0].key] = SampleResult(o.item[0].key, FAILED_OOM, {}, {},
                                                          f"out of memory at {key[0][0]}x{key[0][1]} px, batch of 1")
                else:
                    results[o.item[0].key] = o.result
        return [results[s.key] for s in samples]

    def _bucket_batch(self, key) -> int:
        """Samples of one (size, styles) bucket optimised together: fixed, or what free memory holds."""
        if self.cfg.batch_size != "auto":
            return int(self.cfg.batch_size)
        from pipeline.engine.batching import auto_batch_size

        (w, h), _styles = key
        return auto_batch_size(self.backbone.net, self._layers(), w, h, self.cfg, self.device)

    def _layers(self) -> list[str]:
        return [self.cfg.content_layer, *self.cfg.style_layers]

    def _stylize(self, group: list, key=None) -> list[SampleResult]:
        """One optimisation for same-size samples that share their styles.

        `key` is ((w, h), styles); a (w, h) smaller than the samples' own working
        size comes from the out-of-memory fallback and is used instead.
        """
        from pipeline.io.images import resize
        from pipeline.methods.stylize import StylizeJob, stylize_batch

        start = time.perf_counter()
        seeds = [item[0].seed for item in group]
        torch.manual_seed(seeds[0] % (1 << 63))
        cfg, contents = self.cfg, [item[1] for item in group]
        shrunk = key is not None and tuple(key[0]) != tuple(group[0][3])
        if shrunk:
            cfg = dataclasses.replace(self.cfg, size=max(key[0]))
            contents = [resize(c, tuple(key[0])) for c in contents]
        pixels, result = stylize_batch(self.backbone, cfg, self._targets,
                                       StylizeJob(contents, group[0][2], seeds))
        seconds = round((time.perf_counter() - start) / len(group), 3)
        out = []
        for b, (sample, content, _styles, wh) in enumerate(group):
            losses = result.losses[b]
            if not all(math.isfinite(v) for v in losses.values()) or not torch.isfinite(pixels[b]).all():
                out.append(failed(sample, NonFiniteResult(
                    f"non-finite loss or pixels (total loss {losses.get('total')})")))
                continue
            image = to_pil(pixels[b])  # the device->host copy stays here; the encode is deferred
            data = functools.partial(encode_image, image, self.cfg.output_format)
            meta = {"losses": losses, "iterations": result.evaluations, "seconds": seconds,
                    "batch": len(group), "size": list(image.size), "content_size": list(wh),
                    "compiled": result.compiled}
            if shrunk:
                meta["oom_resized_from"] = list(wh)
            members = {self.cfg.output_format: data, "json": self.record(sample, meta)}
            out.append(SampleResult(sample.key, OK, members, meta))
        return out
