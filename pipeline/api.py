"""`nst one`: stylize a single pair with a live progress bar, using the shared engine."""

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

    def on_snapshot(done, x):
        snap = output.with_name(f"{output.stem}.{done:05d}{output.suffix}")
        save_image(to_pil(backbone.pre.to_pixels(x).clamp(0, 255)), snap)

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
    save_image(image, output)
    atomic_write_text(output.with_suffix(".json"), json.dumps(record, indent=2))
    return record
