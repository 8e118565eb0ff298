"""The Python API the `nst` CLI calls: stylize one image, build a method's Task, run it over a dataset.

Everything the CLI can do is a function here, so scripts and notebooks get the same
behaviour without a subprocess; the CLI only parses options and prints.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from pipeline.config import build_config
from pipeline.errors import BadInput
from pipeline.io.atomic import atomic_write_text
from pipeline.io.images import load_image, save_image, to_pil
from pipeline.models.vgg import Backbone
from pipeline.progress import bar, fmt_loss
from pipeline.methods.stylize import StyleTargets, StylizeJob, stylize_batch


def run_one(content: Path, styles: list[Path], output: Path, preset: str, size, iterations, seed,
            sets: list[str], save_every: int, device: str) -> dict:
    """`nst one`: stylize one content image with its styles, with a live progress bar; returns the record
    also written next to the output (OUTPUT.json)."""
    cfg = build_config(preset=preset, overrides={"size": size, "iterations": iterations, "seed": seed}, sets=sets)
    if output.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise BadInput(f"output must end in .png, .jpg or .webp, got {str(output)!r}")
    if save_every < 0:
        raise BadInput(f"--save-every must be >= 0, got {save_every}")
    content_img = load_image(content)
    style_imgs = [(str(p), load_image(p)) for p in styles]
    if cfg.style_blend is not None and len(cfg.style_blend) != len(style_imgs):
        raise BadInput(f"style_blend has {len(cfg.style_blend)} values but {len(style_imgs)} style images were given")
    torch.manual_seed(cfg.seed)
    backbone = Backbone(cfg.network, cfg.pooling, cfg.weights, device)
    targets = StyleTargets(backbone, cfg)
    progress = bar(cfg.iterations, desc="nst one", unit="eval")

    def on_log(done, total, rows):
        r = rows[0]
        progress.set_postfix(total=fmt_loss(r["total"]), content=fmt_loss(r.get("content", 0.0)),
                             style=fmt_loss(r.get("style", 0.0)), tv=fmt_loss(r.get("tv", 0.0)), refresh=False)
        progress.update(done - progress.n)

    written: list[Path] = []  # removed again if the run is cut short (Ctrl-C, an error): no partial output

    def on_snapshot(done, x):
        snap = output.with_name(f"{output.stem}.{done:05d}{output.suffix}")
        written.append(snap)
        save_image(to_pil(backbone.pre.to_pixels(x).clamp(0, 255)), snap)

    try:
        start = time.perf_counter()
        pixels, result = stylize_batch(backbone, cfg, targets, StylizeJob([content_img], style_imgs, [cfg.seed]),
                                       on_log=on_log, on_snapshot=on_snapshot, snapshot_every=save_every)
        progress.close()
        image = to_pil(pixels)
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
            "weights": {"network": cfg.network, "state_digest": backbone.weights_digest},
        }
        written += [output, output.with_suffix(".json")]
        save_image(image, output)
        atomic_write_text(output.with_suffix(".json"), json.dumps(record, indent=2))
    except BaseException:
        progress.close()
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return record


METHODS = ("stylize", "texture", "invert", "dream", "visualize")


def method_config(method: str, preset: str, overrides: dict | None = None, sets=()):
    """A method's validated config: its defaults < preset < overrides (None values ignored) < --set."""
    from pipeline.config import StyleConfig, build_config
    from pipeline.methods.dream import DreamConfig
    from pipeline.methods.invert import InvertConfig
    from pipeline.methods.texture import TextureConfig
    from pipeline.methods.visualize import VisualizeConfig

    cls = {"stylize": StyleConfig, "texture": TextureConfig, "invert": InvertConfig, "dream": DreamConfig,
           "visualize": VisualizeConfig}[method]
    return build_config(cls, preset=preset, sets=list(sets), overrides=overrides or {})


def method_task(method: str, cfg, data: Path | None = None, styles=(), assign: str = "one",
                shard_order: str = "size"):
    """The dataset Task of `method` over DATA (a directory, .txt, .csv or .jsonl) and/or style images."""
    from pipeline.io.reader import read_data, read_styles

    if method == "stylize":
        from pipeline.tasks.stylize import StylizeTask

        return StylizeTask(cfg, read_data(data), read_styles(styles) if styles else [], assign, shard_order)
    if method == "texture":
        from pipeline.tasks.texture import TextureTask

        return TextureTask(cfg, read_styles(styles))
    from pipeline.tasks.dream import DreamTask
    from pipeline.tasks.invert import InvertTask
    from pipeline.tasks.visualize import VisualizeTask

    return {"invert": InvertTask, "dream": DreamTask, "visualize": VisualizeTask}[method](cfg, read_data(data))


def plan_dataset(task, out: Path, shard_size: int, overwrite: bool = False):
    """Write (or check) OUT/run.json for `task` without running it; returns the RunPlan."""
    from pipeline.run.plan import open_run

    return open_run(out, task, shard_size, overwrite=overwrite)


def run_dataset(task, opts) -> int:
    """Run (or resume) `task` with RunOptions `opts` on the shared runner; returns the exit status."""
    from pipeline.run.runner import execute

    return execute(task, opts)


def visualize_reduce(out: Path, cfg, device: str, show_progress: bool = True) -> list[Path]:
    """`nst visualize`'s reduce step: merge the per-shard top-9 in OUT and draw the grids."""
    from pipeline.tasks.visualize_reduce import reduce_and_draw

    return reduce_and_draw(out, cfg, device, show_progress=show_progress)
