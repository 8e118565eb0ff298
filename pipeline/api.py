"""The Python API: what the `nst` commands do, for notebooks, scripts and other pipelines.

The CLI only parses options and prints; everything it does is a function here.

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
import json
import os
import time
from pathlib import Path
from typing import Iterator, Sequence, Union

from PIL import Image

from pipeline.errors import BadInput

ImageLike = Union[str, os.PathLike, Image.Image]


# ------------------------------------------------------------------ helpers

def pick_device(device: str = "auto") -> str:
    """'auto' -> cuda when available, else cpu; refuses an unusable device in one line."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"device {device!r} requested but CUDA is not available")
    if device != "cpu" and not device.startswith("cuda"):
        raise BadInput(f"unknown device {device!r} (cpu, cuda, cuda:N or auto)")
    return device


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

    from pipeline.run.threads import resolve_threads

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
    from pipeline.io.images import resize, target_size

    return resize(img, target_size(img.width, img.height, cfg.size, cfg.upscale, cfg.size_multiple))


# ------------------------------------------------------------ one image

def stylize_image(cfg, content: ImageLike, styles: Sequence[ImageLike], device: str = "auto",
                  threads: int | None = None, deterministic: bool = False, progress: bool = True,
                  on_snapshot=None, snapshot_every: int = 0, before_work=None):
    """(PIL image, RenderResult, backbone) of one Gatys optimisation under a built config.
    Inputs, the memory estimate and the thread options are checked first; then before_work() (e.g. make
    the output folder) runs, then the optimisation."""
    from pipeline.engine.tile_plan import check_fits
    from pipeline.io.images import to_pil
    from pipeline.methods.stylize import StyleTargets, StylizeJob, content_size, stylize_batch
    from pipeline.models.weights import backbone_spec

    _, content_img = _image(content, "content")
    style_imgs = [_image(s, "style") for s in styles]
    if not style_imgs:
        raise BadInput("need at least one style image")
    if cfg.style_blend is not None and len(cfg.style_blend) != len(style_imgs):
        raise BadInput(f"style_blend has {len(cfg.style_blend)} values but {len(style_imgs)} style images were given")
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
    from pipeline.io.images import to_pil
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
    from pipeline.io.images import to_pil, to_tensor
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
    from pipeline.io.images import to_pil, to_tensor
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

    run_opts, settings = _split_options(StyleConfig, options)
    cfg = config_for(StyleConfig, settings)
    style_list = [styles] if isinstance(styles, (str, os.PathLike)) else list(styles)
    task = stylize_task(cfg, data, style_list, assign, shard_order, run_opts.get("device", "auto"))
    return run_task(task, Path(out), **run_opts)


def stylize_task(cfg, data: str | os.PathLike, styles: Sequence[str | os.PathLike], assign: str = "one",
                 shard_order: str = "size", device: str = "auto", styles_per_image: int = 1,
                 label_from: str | None = None, key_from: str | None = None):
    """The dataset Task of `nst stylize`. With upscale, every image is optimised at `size`: a size
    the device cannot hold is refused here, before any work (without upscale, the images' own sizes
    bound it and the runner's out-of-memory fallback handles what does not fit)."""
    from pipeline.io.reader import read_data, read_styles
    from pipeline.models.backbones import backbone_spec
    from pipeline.tasks.stylize import PlanOptions, StylizeTask

    rows = read_data(data if isinstance(data, str) else Path(data), label_from)
    style_files = read_styles([Path(s) for s in styles]) if styles else []
    if cfg.upscale:  # asks the device for its memory: the one planning step that needs torch
        from pipeline.engine.tile_plan import check_fits

        batch = 1 if cfg.batch_size == "auto" else cfg.batch_size
        check_fits(backbone_spec(cfg.network).arch, [cfg.content_layer, *cfg.style_layers], (cfg.size, cfg.size),
                   cfg.precision, cfg.lbfgs_history, batch, pick_device(device), tile=cfg.tile,
                   max_memory=cfg.max_memory)
    return StylizeTask(cfg, rows, style_files, assign, shard_order, PlanOptions(assign, styles_per_image, key_from))


def run_options(out: str | os.PathLike, **options):
    """The RunOptions of a dataset run; an unknown option name is refused like an unknown config key."""
    from pipeline.run.runner import RunOptions
    from pipeline.schema import unknown_key

    names = {f.name for f in dataclasses.fields(RunOptions)}
    for key in options:
        if key not in names:
            raise unknown_key(key, names)
    return RunOptions(out=Path(out), **options)


def run_task(task, out: str | os.PathLike, **options) -> dict:
    """Run (or resume) any method's Task into `out`: the summary `nst status --json` prints, plus
    `exit_status` (0 done, 3 some samples failed, 75 stopped early: run again to resume)."""
    from pipeline.run.plan import load_run
    from pipeline.run.runner import execute
    from pipeline.run.status import summarize

    opts = run_options(out, **options)
    code = execute(task, opts)
    return {**summarize(load_run(opts.out), opts.lease_ttl), "exit_status": code}


def _split_options(cls, options: dict) -> tuple[dict, dict]:
    """(run options, config settings) of run_dataset's keyword arguments; a name that is
    neither is refused with the closest of both as a suggestion."""
    from pipeline.run.runner import RunOptions
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
    from pipeline.run.samples import iter_samples

    return iter_samples(out, include_failed)


# ------------------------------------------------------------------ `nst one`

def stylize_to_file(cfg, content: Path, styles: list[Path], output: Path, save_every: int = 0,
                    device: str = "auto", threads: int | None = None, deterministic: bool = False) -> dict:
    """`nst one`: the image written to `output`, its record (config, losses, timing) next to it as JSON,
    and an intermediate image every `save_every` evaluations."""
    from pipeline.io.atomic import atomic_write_text, make_dir
    from pipeline.io.images import save_image

    if output.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise BadInput(f"output must end in .png, .jpg or .webp, got {str(output)!r}")
    if save_every < 0:
        raise BadInput(f"--save-every must be >= 0, got {save_every}")

    written: list[Path] = []  # removed again if the run is cut short (Ctrl-C, an error): no partial output

    def on_snapshot(done, image):
        snap = output.with_name(f"{output.stem}.{done:05d}{output.suffix}")
        written.append(snap)
        save_image(image, snap)

    try:
        start = time.perf_counter()
        device = pick_device(device)
        image, result, backbone = stylize_image(cfg, content, styles, device, threads, deterministic, True,
                                                on_snapshot if save_every else None, save_every,
                                                before_work=lambda: make_dir(output.parent))
        record = {
            "content": str(content),
            "styles": [str(p) for p in styles],
            "output": str(output),
            "config": cfg.to_dict(),
            "losses": result.losses[0],
            "evaluations": result.evaluations,
            "seconds": round(time.perf_counter() - start, 3),
            "size": list(image.size),
            "device": device,
            "compiled": result.compiled,  # the torch.compile mode the evaluations ran under ("none": eager)
            **({"tiles": result.tiles} if result.tiles else {}),  # the full-size stage ran in tiles
            "weights": {"network": cfg.network, "state_digest": backbone.weights_digest},
        }
        written += [output, output.with_suffix(".json")]
        save_image(image, output)
        atomic_write_text(output.with_suffix(".json"), json.dumps(record, indent=2))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return record


# ------------------------------------------------------- what the commands call

CONFIG_CLASSES = {  # method -> (module, class) of its config
    "stylize": ("pipeline.config", "StyleConfig"), "texture": ("pipeline.methods.texture", "TextureConfig"),
    "invert": ("pipeline.methods.invert", "InvertConfig"), "dream": ("pipeline.methods.dream", "DreamConfig"),
    "visualize": ("pipeline.methods.visualize", "VisualizeConfig"),
    "imagine": ("pipeline.methods.imagine", "ImagineConfig")}
METHODS = tuple(CONFIG_CLASSES)


def method_config(method: str, preset: str, overrides: dict | None = None, sets=()):
    """A method's validated config: its defaults < preset < overrides (None values ignored) < --set."""
    import importlib

    from pipeline.config import build_config

    if method not in CONFIG_CLASSES:
        raise BadInput(f"unknown method {method!r} (choose from {', '.join(CONFIG_CLASSES)})")
    module, name = CONFIG_CLASSES[method]
    cls = getattr(importlib.import_module(module), name)  # only this method's module: planning stays light
    return build_config(cls, preset=preset, sets=list(sets), overrides=overrides or {})


def method_task(method: str, cfg, data: Path | None = None, styles=(), assign: str = "one",
                shard_order: str = "size", device: str = "auto", styles_per_image: int = 1,
                label_from: str | None = None, key_from: str | None = None):
    """The dataset Task of `method` over DATA (a directory, .txt, .csv, .jsonl or webdataset tars)
    and/or style images."""
    from pipeline.io.reader import read_data, read_styles

    if method == "stylize":
        return stylize_task(cfg, data, list(styles), assign, shard_order, device, styles_per_image, label_from,
                            key_from)
    if method == "texture":
        from pipeline.tasks.texture import TextureTask

        return TextureTask(cfg, read_styles(styles))
    if method == "imagine":  # no input files: the plan lists the classes or channels
        from pipeline.tasks.imagine import ImagineTask

        return ImagineTask(cfg)
    from pipeline.tasks.dream import DreamTask
    from pipeline.tasks.invert import InvertTask
    from pipeline.tasks.visualize import VisualizeTask

    return {"invert": InvertTask, "dream": DreamTask, "visualize": VisualizeTask}[method](cfg, read_data(data))


def plan_dataset(task, out: Path, shard_size: int, overwrite: bool = False, hash_inputs: bool = False):
    """Write (or check) OUT/run.json and its per-shard sample files for `task` without running it."""
    from pipeline.run.plan import open_run as open_plan

    return open_plan(out, task, shard_size, overwrite=overwrite, hash_inputs=hash_inputs)


def export_dataset(out: Path, to: Path, fmt: str = "folder", show_progress: bool = True) -> tuple[int, int]:
    """`nst export`: a finished run's images as a folder tree mirroring the inputs; (written, already there)."""
    from pipeline.errors import BadInput
    from pipeline.run.export import FORMATS, export_folder
    from pipeline.run.plan import load_run

    if fmt not in FORMATS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return export_folder(load_run(out), to, show_progress)


def estimate_cost(plan, task, device: str = "auto"):
    """The cost of `plan`'s pending samples on `device` (auto: cuda if present): an Estimate whose
    working sizes come from the task's `batch_key` (the image headers) where it has one."""
    from pipeline.run.estimate import estimate, gpu_present

    kind = ("cuda" if gpu_present() else "cpu") if device == "auto" else \
        ("cuda" if device.startswith("cuda") else "cpu")

    def working_size(sample):
        key = task.batch_key(sample)
        return tuple(key[0]) if key else None

    return estimate(plan, kind, working_size)


def execute_run(task, opts) -> int:
    """Run (or resume) `task` with RunOptions `opts` on the shared runner; returns the exit status."""
    from pipeline.run.runner import execute

    return execute(task, opts)


def visualize_reduce(out: Path, cfg, device: str, show_progress: bool = True) -> list[Path]:
    """`nst visualize`'s reduce step: merge the per-shard top-9 in OUT and draw the grids."""
    from pipeline.tasks.visualize_reduce import reduce_and_draw

    return reduce_and_draw(out, cfg, device, show_progress=show_progress)


def run_one(content: Path, styles: list[Path], output: Path, preset: str, size, iterations, seed,
            sets: list[str], save_every: int, device: str, threads: int | None = None,
            deterministic: bool = False) -> dict:
    """`nst one`: the config from the command's options, then `stylize_to_file`."""
    cfg = method_config("stylize", preset, {"size": size, "iterations": iterations, "seed": seed}, sets)
    return stylize_to_file(cfg, content, styles, output, save_every, device, threads, deterministic)
