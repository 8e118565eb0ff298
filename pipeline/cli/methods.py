"""`nst texture`, `nst invert`, `nst dream`, `nst visualize`, `nst imagine`: the sister methods over datasets.

Each builds its config (preset < options < --set) and Task, and hands it to the
same runner as `nst stylize` (plan, shards, leases, resume, summary).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.app import app, fail
from pipeline.cli.run_options import run_command
from pipeline.errors import NSTError
from pipeline.run.execute.options import RunOptions

SET = typer.Option([], "--set", help="Override any config key: key=value")
SIZE = typer.Option(None, help="Longest side of the input (texture: of the source) in pixels")
ITERATIONS = typer.Option(None, help="Loss-and-gradient evaluations (dream: per octave)")
SEED = typer.Option(None, help="Run seed (per-sample seeds derive from it)")
DATA = typer.Argument(..., help="A directory of images, a .txt list, or a .csv/.jsonl with a path column")


def _run_method(method: str, params: dict, overrides: dict | None = None, **task_options) -> None:
    """Build `method`'s config and Task from a command's parameters and run it on the shared runner
    (which prints the run's final line and runs the task's finish step); NSTError -> one line + its exit code."""
    from pipeline.run.execute.runner import execute
    from pipeline.tasks.registry import method_config, method_task

    run: RunOptions = params["run"]
    try:
        cfg = method_config(method, params["config"], {"size": params["size"], "iterations": params["iterations"],
                                                           "seed": params["seed"], **(overrides or {})},
                                params["set_"])
        task = method_task(method, cfg, data=params.get("data"), styles=params.get("style") or (), **task_options)
        code = execute(task, run)
    except NSTError as exc:
        fail(exc)
    raise typer.Exit(code)


@app.command()
@run_command
def texture(
    style: List[Path] = typer.Option(..., "--style", "-s", help="Texture source image or directory (repeatable)"),
    count: Optional[int] = typer.Option(None, help="Textures per source, each with its own seed"),
    config: str = typer.Option("texture", "--config", "-c", help="Preset name in configs/ or a YAML file"),
    set_: List[str] = SET, size: Optional[int] = SIZE, iterations: Optional[int] = ITERATIONS,
    seed: Optional[int] = SEED, run: RunOptions = None,
):
    """Texture synthesis (Gatys et al. 2015): new images with the Gram statistics of each source."""
    _run_method("texture", locals(), {"count": count})


def _data_command(method: str, doc: str):
    """Register `nst METHOD DATA` with only the shared options (invert, visualize)."""

    def command(
        data: Path = DATA,
        config: str = typer.Option(method, "--config", "-c", help="Preset name in configs/ or a YAML file"),
        set_: List[str] = SET, size: Optional[int] = SIZE, iterations: Optional[int] = ITERATIONS,
        seed: Optional[int] = SEED, run: RunOptions = None,
    ):
        _run_method(method, dict(locals()))

    command.__doc__ = doc
    command.__name__ = method
    return app.command(method)(run_command(command))


_data_command("invert", "Reconstruct each image from each chosen layer (Mahendran & Vedaldi 2014), "
                        "plus a comparison sheet.")


@app.command()
@run_command
def dream(
    data: Path = DATA,
    octaves: Optional[int] = typer.Option(None, help="Octaves of the image pyramid"),
    octave_scale: Optional[float] = typer.Option(None, help="Size ratio between octaves (> 1)"),
    zoom_frames: Optional[int] = typer.Option(None, help="Extra frames, each zooming into the last"),
    layer: Optional[str] = typer.Option(None, help="Layer to amplify (e.g. block4_conv2)"),
    channel: Optional[int] = typer.Option(None, help="Only this channel of the layer"),
    config: str = typer.Option("dream", "--config", "-c", help="Preset name in configs/ or a YAML file"),
    set_: List[str] = SET, size: Optional[int] = SIZE, iterations: Optional[int] = ITERATIONS,
    seed: Optional[int] = SEED, run: RunOptions = None,
):
    """DeepDream: gradient ascent on a layer's mean squared activation, with jitter and octaves."""
    _run_method("dream", locals(), {"octaves": octaves, "octave_scale": octave_scale, "zoom_frames": zoom_frames,
                                    "dream_layer": layer, "channel": channel})


_data_command("visualize", """Zeiler & Fergus: each filter's top-9 over DATA, projected to pixels with a deconvnet, as grids.

    Rerun the same command to redraw the grids from the recorded top-9 (no new pass);
    grid_filters and cell may change between runs.
    """)


@app.command()
@run_command
def imagine(
    classes: List[str] = typer.Option([], "--class", help="ImageNet class name or index (repeatable): "
                                      "the classifier's picture of it"),
    per_class: Optional[int] = typer.Option(None, help="Images per class, each from its own seed"),
    layer: Optional[str] = typer.Option(None, help="Layer whose channels to draw (VGG16, or the classifier "
                                        "with --set network=efficientnet-lite0)"),
    channels: Optional[str] = typer.Option(None, help="Channels of --layer: A-B (inclusive), or A,B,C-D"),
    config: str = typer.Option("imagine", "--config", "-c", help="Preset name in configs/ or a YAML file"),
    set_: List[str] = SET,
    size: Optional[int] = typer.Option(None, help="Side of the square image in pixels"),
    iterations: Optional[int] = typer.Option(None, help="Adam steps per octave"),
    seed: Optional[int] = SEED, run: RunOptions = None,
    sheet_columns: Optional[int] = typer.Option(None, help="Columns of the contact sheet (default: about square)"),
):
    """Imagine a class or a channel from noise (Olah et al. 2017): Fourier-parameterised,
    colour-decorrelated images optimised under random pad, jitter, scale and rotation.
    Writes OUT/imagine/sheet.png, a contact sheet of the run, when it is done."""
    _run_method("imagine", locals(), {"classes": classes or None, "per_class": per_class, "layer": layer,
                                      "channels": channels}, sheet_columns=sheet_columns)
