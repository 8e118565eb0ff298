"""`nst one`: stylize one image into a file, with its record beside it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.app import MAX_MEMORY, app, fail
from pipeline.cli.run_options import option
from pipeline.errors import BadInput, NSTError


@app.command()
def one(
    images: List[Path] = typer.Argument(..., help="CONTENT STYLE [STYLE...]"),
    output: Path = typer.Option(..., "-o", "--output", help="Output image (.png, .jpg or .webp)"),
    config: str = typer.Option("default", "--config", "-c", help="Preset name in configs/ or a YAML file"),
    size: Optional[int] = typer.Option(None, help="Longest side of the output in pixels"),
    iterations: Optional[int] = typer.Option(None, help="Loss-and-gradient evaluations"),
    seed: Optional[int] = typer.Option(None, help="Random seed (noise init)"),
    set_: List[str] = typer.Option([], "--set", help="Override any config key: key=value"),
    save_every: int = typer.Option(0, help="Write an intermediate image every N evaluations"),
    device: str = typer.Option("auto", help="cpu, cuda, cuda:N or auto"),
    threads: Optional[int] = option("threads"),
    deterministic: bool = option("deterministic"),
    max_memory: Optional[str] = MAX_MEMORY,
):
    """Stylize one content image with one or more style images."""
    from pipeline.run.execute.signals import Stopped, install_stop_signals

    install_stop_signals(raise_at_once=True)  # one image: nothing to finish, a stop ends it at once
    try:
        if len(images) < 2:
            raise NSTError(f"need a content image and at least one style image, got {len(images)} path(s)")
        set_ = [*set_, f"max_memory={max_memory}"] if max_memory is not None else set_
        run_one(images[0], images[1:], output, config, size, iterations, seed, set_, save_every, device,
                threads, deterministic)
    except NSTError as exc:
        fail(exc)
    except Stopped as stop:  # run_one has removed what it had written
        typer.echo(f"nst: stopped by {stop.signame}: removed the partial output {output}", err=True)
        raise typer.Exit(stop.exit_code)


def stylize_to_file(cfg, content: Path, styles: list[Path], output: Path, save_every: int = 0,
                    device: str = "auto", threads: int | None = None, deterministic: bool = False) -> dict:
    """`nst one`: the image written to `output`, its record (config, losses, timing) next to it as JSON,
    and an intermediate image every `save_every` evaluations."""
    from pipeline.api import stylize_image
    from pipeline.engine.device import resolve_device
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
        device = resolve_device(device)
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



def run_one(content: Path, styles: list[Path], output: Path, preset: str, size, iterations, seed,
            sets: list[str], save_every: int, device: str, threads: int | None = None,
            deterministic: bool = False) -> dict:
    """`nst one`: the config from the command's options, then `stylize_to_file`."""
    from pipeline.tasks.registry import method_config

    cfg = method_config("stylize", preset, {"size": size, "iterations": iterations, "seed": seed}, sets)
    return stylize_to_file(cfg, content, styles, output, save_every, device, threads, deterministic)
