"""The Python API, for notebooks, scripts and other pipelines: one image, a dataset run, and what
can be asked of a run folder (status, verify, report, export, its outputs).

The `nst` commands call the same packages (tasks/registry.py, run/, report/) directly.

Settings are config keys (README, "Parameters") given as keyword arguments, plus
`preset` (a bundled preset name or a YAML file; each function has its command's
preset by default). They pass the same schema as `--set`: a bad value raises
BadInput with the one line the CLI would print. A setting given as None keeps
the preset's value. Progress bars use tqdm.auto (widgets in a notebook).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from pathlib import Path
from typing import Iterator, Sequence, Union

from PIL import Image

from pipeline.engine.device import resolve_device as pick_device
from pipeline.errors import BadInput

ImageLike = Union[str, os.PathLike, Image.Image]


# ------------------------------------------------------------------ helpers

def config_for(cls, settings: dict):
    """The validated config of `cls` from API keyword settings (`preset` picks the base)."""
    from pipeline.config import build_config

    settings = dict(settings)
    return build_config(cls, preset=settings.pop("preset", cls.preset), overrides=settings)


def _image(x: ImageLike, what: str) -> tuple[str, Image.Image]:
    """(name, RGB image) of a path or PIL image; the name keys the style-target cache."""
    from pipeline.io.images import load_image, to_rgb

    if isinstance(x, Image.Image):
        img = to_rgb(x)
        return "image:" + hashlib.sha256(repr(img.size).encode() + img.tobytes()).hexdigest()[:16], img
    if isinstance(x, (str, os.PathLike)):
        return str(x), load_image(x)
    raise BadInput(f"{what} must be a path or a PIL image, got {type(x).__name__}")


@functools.lru_cache(maxsize=4)
def _backbone(network: str, pooling: str, weights, device: str):
    """Loaded once per (network, pooling, device) in a session: a notebook calls many times."""
    from pipeline.models.vgg import Backbone

    return Backbone(network, pooling, weights, device)


def _prepare(cfg, device: str, threads: int | None, deterministic: bool):
    """Device, CPU threads and seed for one in-process optimisation; returns (device, backbone)."""
    import torch

    from pipeline.run.execute.threads import resolve_threads

    device = pick_device(device)
    if device == "cpu":
        torch.set_num_threads(resolve_threads(threads, 1, deterministic))
    torch.manual_seed(cfg.seed)
    return device, _backbone(cfg.network, cfg.pooling, cfg.weights, device)


def _bar(total: int, desc: str, show: bool):
    from pipeline.progress import bar, fmt_loss

    progress = bar(total, desc=desc, unit="eval", disable=not show)

    def on_log(done, _total, rows):
        r = rows[0]
        progress.set_postfix({k: fmt_loss(v) for k, v in r.items() if isinstance(v, float)}, refresh=False)
        progress.update(done - progress.n)

    return progress, on_log


def _sized(img: Image.Image, cfg) -> Image.Image:
    """The input as the dataset tasks size it: longest side `size` (never upscaled unless asked)."""
    from pipeline.pixels import resize, target_size

    return resize(img, target_size(img.width, img.height, cfg.size, cfg.upscale, cfg.size_multiple))


# ------------------------------------------------------------ one image

def stylize_image(cfg, content: ImageLike, styles: Sequence[ImageLike], device: str = "auto",
                  threads: int | None = None, deterministic: bool = False, progress: bool = True,
                  on_snapshot=None, snapshot_every: int = 0, before_work=None):
    """(PIL image, RenderResult, backbone) of one Gatys optimisation under a built config.
    Inputs, the memory estimate and the thread options are checked first; then before_work() (e.g. make
    the output folder) runs, then the optimisation."""
    from pipeline.engine.tile_plan import check_fits
    from pipeline.pixels import to_pil
    from pipeline.methods.stylize import StyleTargets, StylizeJob, blend_weights, content_size, stylize_batch
    from pipeline.models.weights import backbone_spec

    _, content_img = _image(content, "content")
    style_imgs = [_image(s, "style") for s in styles]
    if not style_imgs:
        raise BadInput("need at least one style image")
    blend_weights(cfg.style_blend, len(style_imgs))  # refused before any work
    check_fits(backbone_spec(cfg.network).arch, [cfg.content_layer, *cfg.style_layers], content_size(content_img, cfg),
               cfg.precision, cfg.lbfgs_history, 1, pick_device(device), tile=cfg.tile, max_memory=cfg.max_memory)
    device, backbone = _prepare(cfg, device, threads, deterministic)
    if before_work is not None:
        before_work()
    bar, on_log = _bar(cfg.iterations, "stylize", progress)
    snap = None if on_snapshot is None else (lambda done, x: on_snapshot(done, to_pil(
        backbone.pre.to_pixels(x).clamp(0, 255))))
    try:
        pixels, result = stylize_batch(backbone, cfg, StyleTargets(backbone, cfg),
                                       StylizeJob([content_img], style_imgs, [cfg.seed]), on_log=on_log,
                                       on_snapshot=snap, snapshot_every=snapshot_every)
    finally:
        bar.close()
    return to_pil(pixels), result, backbone


def stylize(content: ImageLike, style: ImageLike | Sequence[ImageLike], *, device: str = "auto",
            threads: int | None = None, deterministic: bool = False, progress: bool = True,
            **settings) -> Image.Image:
    """`content` in the style of `style` (one image, or a list blended by `style_blend`)."""
    from pipeline.config import StyleConfig

    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    cfg = config_for(StyleConfig, settings)
    return stylize_image(cfg, content, styles, device, threads, deterministic, progress)[0]


def texture(source: ImageLike, *, device: str = "auto", threads: int | None = None, deterministic: bool = False,
            progress: bool = True, **settings) -> Image.Image:
    """A new texture with the Gram statistics of `source` (`width`/`height` set its size)."""
    from pipeline.pixels import to_pil
    from pipeline.methods.texture import TextureConfig, synthesize

    cfg = config_for(TextureConfig, settings)
    name, img = _image(source, "source")  # synthesize sizes it (longest side `size`)
    _, backbone = _prepare(cfg, device, threads, deterministic)
    bar, on_log = _bar(cfg.iterations, "texture", progress)
    try:
        pixels, _ = synthesize(backbone, cfg, name, img, cfg.seed, on_log=on_log)
    finally:
        bar.close()
    return to_pil(pixels)


def invert(image: ImageLike, *, device: str = "auto", threads: int | None = None, deterministic: bool = False,
           progress: bool = True, **settings) -> dict[str, Image.Image]:
    """{layer: the image reconstructed from that layer's activations}, shallow to deep."""
    from pipeline.pixels import to_pil, to_tensor
    from pipeline.methods.invert import InvertConfig, reconstruct

    cfg = config_for(InvertConfig, settings)
    _, img = _image(image, "image")
    pixels = to_tensor(_sized(img, cfg))
    _, backbone = _prepare(cfg, device, threads, deterministic)
    out = {}
    for layer in cfg.invert_layers:
        bar, on_log = _bar(cfg.iterations, f"invert {layer}", progress)
        try:
            out[layer] = to_pil(reconstruct(backbone, cfg, pixels, layer, cfg.seed, on_log=on_log)[0])
        finally:
            bar.close()
    return out


def dream(image: ImageLike, *, device: str = "auto", threads: int | None = None, deterministic: bool = False,
          progress: bool = True, **settings) -> Image.Image | list[Image.Image]:
    """DeepDream of `image`; with zoom_frames > 0, the list of frames."""
    from pipeline.pixels import to_pil, to_tensor
    from pipeline.methods.dream import DreamConfig, dream_frames

    cfg = config_for(DreamConfig, settings)
    _, img = _image(image, "image")
    pixels = to_tensor(_sized(img, cfg))
    _, backbone = _prepare(cfg, device, threads, deterministic)
    bar, on_log = _bar(cfg.iterations * cfg.octaves * (1 + cfg.zoom_frames), "dream", progress)
    done = [0]

    def count(_done, _total, rows):
        done[0] += 1
        on_log(done[0], None, rows)

    try:
        frames = [to_pil(f) for f in dream_frames(backbone, cfg, pixels, cfg.seed, on_log=count)]
    finally:
        bar.close()
    return frames if cfg.zoom_frames else frames[0]


# --------------------------------------------------------------- datasets

def run_dataset(data: str | os.PathLike, styles: Sequence[str | os.PathLike] | str | os.PathLike,
                out: str | os.PathLike, *, assign: str = "one", shard_order: str = "size", **options) -> dict:
    """Stylize every image of `data` into the run folder `out` (resumable, as `nst stylize`);
    returns the run's summary (counts, shards, rate) with its `exit_status`. `options` are the
    run options (devices, device, shard_size, threads, deterministic, overwrite, retry_failed,
    progress, ...) and config settings."""
    from pipeline.config import StyleConfig
    from pipeline.tasks.registry import stylize_task

    run_opts, settings = _split_options(StyleConfig, options)
    cfg = config_for(StyleConfig, settings)
    style_list = [styles] if isinstance(styles, (str, os.PathLike)) else list(styles)
    task = stylize_task(cfg, data, style_list, assign, shard_order, run_opts.get("device", "auto"))
    return run_task(task, Path(out), **run_opts)


def run_options(out: str | os.PathLike, **options):
    """The RunOptions of a dataset run; an unknown option name is refused like an unknown config key."""
    from pipeline.run.execute.options import RunOptions
    from pipeline.schema import unknown_key

    names = {f.name for f in dataclasses.fields(RunOptions)}
    for key in options:
        if key not in names:
            raise unknown_key(key, names)
    return RunOptions(out=Path(out), **options)


def run_task(task, out: str | os.PathLike, **options) -> dict:
    """Run (or resume) any method's Task into `out`: the summary `nst status --json` prints, plus
    `exit_status` (0 done, 3 some samples failed, 75 stopped early: run again to resume)."""
    from pipeline.run.folder.plan import load_run
    from pipeline.run.execute.runner import execute
    from pipeline.run.views.status import summarize

    opts = run_options(out, **options)
    code = execute(task, opts)
    return {**summarize(load_run(opts.out), opts.lease_ttl), "exit_status": code}


def _split_options(cls, options: dict) -> tuple[dict, dict]:
    """(run options, config settings) of run_dataset's keyword arguments; a name that is
    neither is refused with the closest of both as a suggestion."""
    from pipeline.run.execute.options import RunOptions
    from pipeline.schema import unknown_key

    run_names = {f.name for f in dataclasses.fields(RunOptions)} - {"out"}
    config_names = {f.name for f in dataclasses.fields(cls)} | {"preset"}
    for key in options:
        if key not in run_names | config_names:
            raise unknown_key(key, run_names | config_names)
    return ({k: v for k, v in options.items() if k in run_names},
            {k: v for k, v in options.items() if k not in run_names})


def open_run(out: str | os.PathLike, include_failed: bool = False) -> Iterator[tuple[Image.Image | None, dict]]:
    """(image, metadata) of every finished sample of the run in `out`, in key order; metadata is
    what the sample recorded (its json member). With include_failed, a failed sample comes as
    (None, its manifest row: status and error)."""
    from pipeline.run.views.outputs import iter_samples

    return iter_samples(out, include_failed)


# ------------------------------------------------------------ a run folder

def status(out: str | os.PathLike) -> dict:
    """Where the run in `out` stands, as `nst status --json` prints it: counts, shards, rate, ETA, errors."""
    from pipeline.run.folder.plan import load_run
    from pipeline.run.views.status import summarize

    return summarize(load_run(Path(out)))


def verify(out: str | os.PathLike) -> list[str]:
    """The problems `nst verify` finds in the run in `out` (empty: complete and self-consistent)."""
    from pipeline.run.folder.plan import load_run
    from pipeline.run.views.verify import verify_run

    return verify_run(load_run(Path(out)))


def report(out: str | os.PathLike, to: str | os.PathLike | None = None, samples: int = 24, seed: int = 0) -> Path:
    """Write the run's HTML report (`nst report`) into `to` (default OUT/report); returns index.html's path."""
    from pipeline.report.build import ReportOptions, make_report

    return make_report(ReportOptions(run=Path(out), out=None if to is None else Path(to), samples=samples,
                                     seed=seed)).index


def export(out: str | os.PathLike, to: str | os.PathLike, fmt: str = "folder", progress: bool = True) -> tuple[int, int]:
    """A finished run's images as a folder tree mirroring the inputs (`nst export`); (written, already there)."""
    from pipeline.run.views.export import export_run

    return export_run(Path(out), Path(to), fmt, progress)

