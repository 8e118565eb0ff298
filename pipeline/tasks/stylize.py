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
import hashlib
import json
import math
import os
import re
import threading
import time

from pipeline.config import StyleConfig
from pipeline.errors import FAILED_OOM, BadInput
from pipeline.io.images import encode_image, load_image
from pipeline.pixels import to_pil
from pipeline.run.task import OK, NonFiniteResult, Planned, Sample, SampleResult, failed, sample_seed
from pipeline.tasks.base import MethodTask, seed_torch

ASSIGN_POLICIES = ("one", "random", "cycle", "all")
_STYLE_LOCK = threading.Lock()  # the per-worker style cache is filled from the prefetch thread too


KEY_FROM = ("index", "path")
_KEY_BAD = re.compile(r"[^A-Za-z0-9_-]+")


def path_key(rel: str) -> str:
    """A webdataset key from a relative path: extension dropped, other characters than
    [A-Za-z0-9_-] collapsed to "_", long keys shortened with a digest (tar names <= 100 bytes)."""
    key = _KEY_BAD.sub("_", os.path.splitext(rel)[0]).strip("_") or "x"
    if len(key) > 80:
        key = key[:63] + "_" + hashlib.sha1(key.encode()).hexdigest()[:16]
    return key


@dataclasses.dataclass(frozen=True)
class PlanOptions:
    """How DATA rows become samples (recorded through the plan)."""

    assign: str = "one"
    styles_per_image: int = 1
    key_from: str | None = None      # None: index for files, the input's __key__ for tars

    def check(self) -> None:
        if self.assign not in ASSIGN_POLICIES:
            raise BadInput(f"--assign must be one of {', '.join(ASSIGN_POLICIES)}, got {self.assign!r}")
        if self.styles_per_image < 1:
            raise BadInput(f"--styles-per-image must be a positive integer, got {self.styles_per_image}")
        if self.styles_per_image > 1 and self.assign != "random":
            raise BadInput(f"--styles-per-image {self.styles_per_image} needs --assign random, got {self.assign!r}")
        if self.key_from is not None and self.key_from not in KEY_FROM:
            raise BadInput(f"--key-from must be index or path, got {self.key_from!r}")


class ClassTable:
    """Label -> class index, in order of first appearance (sorted folders: alphabetical)."""

    def __init__(self):
        self.index: dict[str, int] = {}

    def __call__(self, label: str) -> int:
        return self.index.setdefault(label, len(self.index))


def assign_styles(rows, styles: list[str], policy: str, seed: int, opts: PlanOptions | None = None,
                  classes: ClassTable | None = None):
    """The ordered (content, styles) plan for an assignment policy, streamed row by row
    (options are checked now, rows as they come)."""
    opts = opts or PlanOptions(policy)
    opts.check()
    return _assigned(rows, styles, policy, seed, opts, classes if classes is not None else ClassTable())


def _assigned(rows, styles: list[str], policy: str, seed: int, opts: PlanOptions, classes: ClassTable):
    for i, row in enumerate(rows):
        if not styles and row.style is None:
            raise BadInput(f"no --style given and input {row.path!r} has no style column")
        extra = {"assign": policy if row.style is None else "row"}
        if row.key:
            extra["source_key"] = row.key
        if row.columns:
            extra["columns"] = row.columns
        if row.label is not None:
            extra["label"], extra["class"] = row.label, classes(row.label)
        if row.passthrough:
            extra["passthrough"] = row.passthrough
        by_path = opts.key_from == "path" or (opts.key_from is None and "#" in (row.rel or ""))
        base = None
        if by_path:
            base = path_key(row.key if (row.key and "#" in (row.rel or "")) else (row.rel or row.path))
        if row.style is not None:
            choices = [(row.style,)]
        elif policy == "one":
            choices = [tuple(styles)]
        elif policy == "cycle":
            choices = [(styles[i % len(styles)],)]
        elif policy == "random":
            # drawn from the content's position (and copy), so the choice is fixed by the plan
            choices = [(styles[sample_seed(seed, i if opts.styles_per_image == 1 else i * opts.styles_per_image + j)
                               % len(styles)],) for j in range(opts.styles_per_image)]
        else:
            choices = [(st,) for st in styles]
        for j, chosen in enumerate(choices):
            e = dict(extra)
            key = base
            if len(choices) > 1 and opts.styles_per_image > 1:
                e["copy"] = j
                key = f"{base}_s{j}" if base else None
            elif len(choices) > 1 and base:
                key = f"{base}_{j}"
            yield Planned(row.path, chosen, e, row.rel, key)


def _smaller(key):
    """The out-of-memory retry size of a ((w, h), styles) batch key: 3/4 of each side, or None below 64 px
    (tile: none)."""
    from pipeline.engine.batching import shrink_by

    size = shrink_by(0.75, minimum=64)(key[0])
    return None if size is None else (size, key[1])


def _tiled(key):
    """The out-of-memory retry of a batch key under tile auto or N: the same size in smaller tiles,
    ((w, h), styles, tile): half the longest side first, then half the tile, never below MIN_TILE
    px; then None (failed_oom). The sample keeps its size; its JSON records `tiles`."""
    from pipeline.engine.tiles import MIN_TILE

    (w, h), styles = key[0], key[1]
    before = key[2] if len(key) > 2 else max(w, h)
    tile = max(MIN_TILE, before // 2)
    return None if tile >= before else ((w, h), styles, tile)


class StylizeTask(MethodTask):
    """Gatys style transfer over a dataset, one sample per `process` call."""

    name = "stylize"
    shard_prefix = "stylized"

    def __init__(self, cfg: StyleConfig, rows, styles: list[str], assign: str = "one",
                 shard_order: str = "size", plan_opts: PlanOptions | None = None):
        if shard_order not in ("size", "input"):
            raise BadInput(f"--shard-order must be size or input, got {shard_order!r}")
        super().__init__(cfg)
        self.plan_opts = plan_opts or PlanOptions(assign)
        self.plan_opts.check()
        self.classes = ClassTable()
        self.rows, self.styles, self.assign = rows, styles, assign
        self.shard_order = shard_order
        # the runner hands process() up to this many samples; "auto" sizes each bucket from free memory
        self.batch_size = cfg.max_batch if cfg.batch_size == "auto" else cfg.batch_size
        self._targets = None
        self._ruler = None
        self._style_cache: dict = {}
        self._working: dict = {}  # image size -> working size (few distinct sizes, a million lookups)

    def identity_extra(self) -> dict:
        extra = {"assign": self.assign}
        if self.plan_opts.styles_per_image != 1:
            extra["styles_per_image"] = self.plan_opts.styles_per_image
        if self.plan_opts.key_from is not None:
            extra["key_from"] = self.plan_opts.key_from
        return extra

    def record_fields(self) -> dict:
        return {}  # stylize records predate the "method" field; the digest test keeps their bytes

    def plan(self):
        self.classes = ClassTable()
        return assign_styles(self.rows, self.styles, self.assign, self.cfg.seed, self.plan_opts, self.classes)

    def style_files(self) -> list[str]:
        return [str(s) for s in self.styles]

    def data_root(self) -> str | None:
        root = getattr(self.rows, "root", None)
        return None if root is None else str(root)

    def run_files(self) -> dict[str, str]:
        """classes.json (label -> class index) when the plan has labels: what .cls members mean."""
        if not self.classes.index:
            return {}
        return {"classes.json": json.dumps(self.classes.index, indent=1) + "\n"}

    def setup(self, device: str) -> None:
        from pipeline.methods.look import LookRuler
        from pipeline.methods.stylize import StyleTargets

        super().setup(device)
        self._targets = StyleTargets(self.backbone, self.cfg, max_entries=64)
        self._ruler = LookRuler(device=device)  # the look of every sample, read on EfficientNet-Lite0

    def _style(self, path: str):
        """Decoded style images are kept per worker; Gram targets are cached by StyleTargets."""
        with _STYLE_LOCK:
            if path not in self._style_cache:
                self._style_cache[path] = load_image(path)
            return self._style_cache[path]

    def batch_key(self, sample: Sample):
        """(working size, styles) from the content's header: the runner batches equal keys.
        A header is read once per distinct (file, size, mtime) the plan described."""
        from pipeline.io.headers import planned_image_size

        wh = planned_image_size(sample.source, sample.planned)
        if wh is None:
            return None  # unreadable: its decode fails in `load` and is recorded per sample
        working = self._working.get(wh)
        if working is None:
            working = self._working[wh] = self.cfg.working_size(wh)
        return working, tuple(sample.styles)

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

        Out of memory splits a batch in halves down to single samples, then, with
        tile auto or N, retries the sample at its own size in smaller tiles (`_tiled`;
        a size the memory budget cannot hold whole is planned in tiles before that,
        pipeline/engine/tile_plan.py), or with tile none at 3/4 of its size (recorded
        as `oom_resized_from` in its metadata) down to 64 px; then records
        `failed_oom`. Any other error in a batch is isolated by retrying its samples
        one by one. A sample that ran in tiles records `tiles` in its JSON.
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
                outcomes = run_with_oom_fallback(group, key, self._stylize,
                                                 shrink=_smaller if self.cfg.tile == "none" else _tiled,
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
        size comes from the out-of-memory fallback and is used instead, as is a
        third entry, a tile side (the fallback under tile auto or N).
        """
        import torch  # here, not at the top: planning a run reads this module without torch

        from pipeline.pixels import resize
        from pipeline.methods.stylize import StylizeJob, stylize_batch

        start = time.perf_counter()
        seeds = [item[0].seed for item in group]
        seed_torch(seeds[0], self.device)
        cfg, contents = self.cfg, [item[1] for item in group]
        shrunk = key is not None and tuple(key[0]) != tuple(group[0][3])
        if key is not None and len(key) > 2:
            cfg = dataclasses.replace(self.cfg, tile=int(key[2]))
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
            meta.update(self._look(content, _styles, image))
            if result.tiles is not None:
                meta["tiles"] = result.tiles
            members, published = passthrough_members(sample)
            members = {self.cfg.output_format: data, **members, "json": self.record(sample, {**meta, **published})}
            out.append(SampleResult(sample.key, OK, members, meta))
        return out

    def _look(self, content, styles: list, image) -> dict:
        """structure and style_match of one output (methods/look.py); a blend of several styles
        has no single style to measure against, so it records neither."""
        if self._ruler is None or len(styles) != 1:
            return {}
        look = self._ruler.score_one(content, styles[0][1], image).as_dict()
        return look if look["style_match"] is not None else {"structure": look["structure"]}


def passthrough_members(sample: Sample) -> tuple[dict[str, bytes], dict]:
    """(members, record fields) from the input: the label's class index as a `.cls` member, a tar
    input's .txt/.cls members copied, its .json parsed into the record as `source_json`."""
    out: dict[str, bytes] = {}
    fields: dict = {}
    if "class" in sample.extra:
        out["cls"] = str(sample.extra["class"]).encode()
    members = sample.extra.get("passthrough") or {}
    if members:
        from pipeline.io.locations import parse_member_ref, read_range

        tar = parse_member_ref(sample.source)[0]
        for ext, (offset, length) in sorted(members.items()):
            data = read_range(tar, offset, length)
            if ext == "json":
                try:
                    fields["source_json"] = json.loads(data)
                except ValueError:
                    fields["source_json"] = data.decode("utf-8", "replace")
            else:
                out.setdefault(ext, data)
    return out, fields
