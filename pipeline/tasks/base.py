"""The one Task base every method's adapter extends: backbone setup, identity, input sizing, records.

Each method's Task (stylize, texture, invert, dream, visualize) only says how a
sample becomes tar members; the runner does plans, shards, leases and resume.
"""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING

from PIL import Image

from pipeline.config import StyleConfig
from pipeline.io.images import load_image
from pipeline.pixels import resize, target_size
from pipeline.run.task import OK, NonFiniteResult, Planned, Sample, SampleResult, Task, failed

if TYPE_CHECKING:  # torch is imported where samples are processed: planning needs none
    import torch


class MethodTask(Task):
    """Base: subclasses set name/shard_prefix and implement plan() and produce(sample)."""

    # config keys that change only how results are drawn, not what a sample produces
    presentation_keys: tuple[str, ...] = ()

    def __init__(self, cfg: StyleConfig):
        self.cfg = cfg
        self.batch_size = 1
        self.backbone = None
        self.device = "cpu"
        self._prefetched: dict = {}  # path -> image or exception that `load` made for this batch
        self._params_of, self._params_dict = None, {}  # the config `_params` last recorded, as a dict

    def identity(self) -> dict:
        d = {k: v for k, v in self.cfg.to_dict().items() if k not in self.presentation_keys}
        return {"method": self.name, **self.identity_extra(), **d}

    def identity_extra(self) -> dict:
        """Run-identity fields beyond the config (stylize: the style assignment)."""
        return {}

    def seed(self) -> int:
        return int(self.cfg.seed)

    def weights_digest(self) -> str:
        from pipeline.models.weights import backbone_digest

        return backbone_digest(self.cfg.network, self.cfg.weights)

    def setup(self, device: str) -> None:
        from pipeline.models.vgg import Backbone

        self.device = device
        self.backbone = Backbone(self.cfg.network, self.cfg.pooling, self.cfg.weights, device)

    def sized(self, path: str) -> Image.Image:
        """The input decoded and resized (longest side cfg.size) exactly as the method sees it
        (taken from what `load` prefetched for the current batch, if it did)."""
        ready = self._prefetched.pop(path, None)
        if isinstance(ready, BaseException):
            raise ready
        return ready if ready is not None else self._decode_sized(path)

    def _decode_sized(self, path: str) -> Image.Image:
        img = load_image(path)
        return resize(img, target_size(img.width, img.height, self.cfg.size, self.cfg.upscale,
                                       self.cfg.size_multiple))

    def process(self, samples: list[Sample], loaded: dict | None = None) -> list[SampleResult]:
        self._prefetched = dict(loaded or {})
        try:
            return [self._one(s) for s in samples]
        finally:
            self._prefetched = {}

    def produce(self, sample: Sample) -> tuple[dict, dict]:
        """(members without "json", meta for the manifest) for one sample; raise on failure.
        Member values may be bytes or zero-argument callables (encoded in the writer thread)."""
        raise NotImplementedError

    def _one(self, sample: Sample) -> SampleResult:
        start = time.perf_counter()
        try:
            seed_torch(sample.seed, self.device)
            members, meta = self.produce(sample)
            if not _finite(meta):
                raise NonFiniteResult(f"non-finite value in the result: {json.dumps(meta)[:200]}")
        except Exception as exc:  # noqa: BLE001 - recorded as a failed row, the run goes on
            return failed(sample, exc)
        meta["seconds"] = round(time.perf_counter() - start, 3)
        return SampleResult(sample.key, OK, {**members, "json": self.record(sample, meta)}, meta)

    def _params(self) -> dict:
        """The config as recorded with every sample, made once per config (asdict per sample
        was 2% of a tiny sample's time)."""
        if self._params_of is not self.cfg:
            self._params_of, self._params_dict = self.cfg, self.cfg.to_dict()
        return self._params_dict

    def record_fields(self) -> dict:
        """Fields of every sample's JSON record beyond the shared ones."""
        return {"method": self.name}

    def record(self, sample: Sample, meta: dict) -> bytes:
        """The sample's JSON member: where it came from, with what, on what, and `meta`."""
        record = {"key": sample.key, "index": sample.index, "source": sample.published_source,
                  "styles": sample.published_styles, "seed": sample.seed, **self.record_fields(),
                  "params": self._params(), "device": self.device,
                  "weights_digest": self.backbone.weights_digest,
                  **{k: v for k, v in sample.extra.items() if k != "passthrough"}, **meta}
        return json.dumps(record, sort_keys=True).encode()


class PerImageTask(MethodTask):
    """A method with one sample per DATA row (invert, dream, visualize)."""

    def __init__(self, cfg, rows):
        super().__init__(cfg)
        self.rows = rows

    def plan(self):
        for r in self.rows:
            yield Planned(r.path, (), {"source_key": r.key} if r.key else {}, r.rel)

    def data_root(self) -> str | None:
        root = getattr(self.rows, "root", None)
        return None if root is None else str(root)

    def produce(self, sample: Sample) -> tuple[dict, dict]:
        """The sample's image, decoded and sized, through `produce_image` in the run's output format."""
        return self.produce_image(self.sized(sample.source), sample, self.cfg.output_format)

    def produce_image(self, original: Image.Image, sample: Sample, fmt: str) -> tuple[dict, dict]:
        """`produce` for one sized input image; members are named with `fmt`'s extension."""
        raise NotImplementedError

    def load(self, samples: list[Sample]) -> dict:
        """Decode and resize the inputs in the prefetch thread: path -> image, or the exception
        (raised again by `sized` inside the sample's own try, so it is that sample's failed row)."""
        out: dict = {}
        for s in samples:
            try:
                out[s.source] = self._decode_sized(s.source)
            except Exception as exc:  # noqa: BLE001
                out[s.source] = exc
        return out


def _finite(obj) -> bool:
    """True if every float inside a nested meta dict/list is finite."""
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_finite(v) for v in obj)
    return True


def seed_torch(seed: int, device: str) -> None:
    """Seed torch's global generators for one sample or batch: the CPU one, and CUDA's on a CUDA
    device. What torch.manual_seed does for these devices, without its lazy MPS/XPU/custom-device
    seeding, which formats a stack trace per call (1.6 ms, 2% of a tiny sample's time)."""
    import torch

    seed = int(seed) % (1 << 63)
    torch.random.default_generator.manual_seed(seed)
    if str(device).startswith("cuda"):
        torch.cuda.manual_seed_all(seed)


def check_pixels(pixels: torch.Tensor) -> None:
    if not pixels.isfinite().all():
        raise NonFiniteResult("non-finite pixels in the result")
