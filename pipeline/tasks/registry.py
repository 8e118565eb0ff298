"""Method name -> its config class and its dataset Task: what `nst METHOD` and the API build.

Each config class is imported only for the method asked for, so planning stays light (no torch).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from pipeline.errors import BadInput

CONFIG_CLASSES = {  # method -> (module, class) of its config
    "stylize": ("pipeline.config", "StyleConfig"), "texture": ("pipeline.methods.texture", "TextureConfig"),
    "invert": ("pipeline.methods.invert", "InvertConfig"), "dream": ("pipeline.methods.dream", "DreamConfig"),
    "visualize": ("pipeline.methods.visualize", "VisualizeConfig"),
    "imagine": ("pipeline.methods.imagine", "ImagineConfig"), "video": ("pipeline.methods.video", "VideoConfig")}
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
                label_from: str | None = None, key_from: str | None = None, sheet_columns: int | None = None):
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

        return ImagineTask(cfg, sheet_columns)
    from pipeline.tasks.dream import DreamTask
    from pipeline.tasks.invert import InvertTask
    from pipeline.tasks.visualize import VisualizeTask

    return {"invert": InvertTask, "dream": DreamTask, "visualize": VisualizeTask}[method](cfg, read_data(data))


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
        from pipeline.engine.device import resolve_device

        batch = 1 if cfg.batch_size == "auto" else cfg.batch_size
        check_fits(backbone_spec(cfg.network).arch, [cfg.content_layer, *cfg.style_layers], (cfg.size, cfg.size),
                   cfg.precision, cfg.lbfgs_history, batch, resolve_device(device), tile=cfg.tile,
                   max_memory=cfg.max_memory)
    return StylizeTask(cfg, rows, style_files, assign, shard_order, PlanOptions(assign, styles_per_image, key_from))


def video_task(cfg, data: str | os.PathLike, styles: Sequence[str | os.PathLike]):
    """`nst video`'s Task: DATA is a video file (refused in one line if it does not decode), a folder
    of videos or a .txt list (an undecodable one becomes a failed_decode row)."""
    from pipeline.io.reader import read_styles
    from pipeline.io.video import video_inputs
    from pipeline.tasks.video import VideoTask

    root, videos = video_inputs(data)
    single = Path(data).is_file() and Path(data).suffix.lower() != ".txt"
    return VideoTask(cfg, videos, read_styles(list(styles)), refuse_undecodable=single, root=root)

