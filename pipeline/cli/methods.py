"""`nst texture`, `nst invert`, `nst dream`, `nst visualize`: the sister methods over datasets.

Each builds its config (preset < options < --set) and Task, and hands it to the
same runner as `nst stylize` (plan, shards, leases, resume, summary).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.app import app, fail
from pipeline.errors import EXIT_OK, EXIT_SAMPLES_FAILED, NSTError

OUT = typer.Option(..., "--out", "-o", help="Run directory (created; resumed if it exists)")
SET = typer.Option([], "--set", help="Override any config key: key=value")
SIZE = typer.Option(None, help="Longest side of the input (texture: of the source) in pixels")
ITERATIONS = typer.Option(None, help="Loss-and-gradient evaluations (dream: per octave)")
SEED = typer.Option(None, help="Run seed (per-sample seeds derive from it)")
DEVICES = typer.Option(1, help="Worker processes / devices (DDP on GPUs, gloo on CPU)")
DEVICE = typer.Option("auto", help="cpu, cuda or auto")
SHARD_SIZE = typer.Option(1000, help="Samples per tar shard")
RETRY = typer.Option(False, "--retry-failed", help="Reprocess only the failed samples")
OVERWRITE = typer.Option(False, "--overwrite", help="Discard an existing run in --out")
LEASE_TTL = typer.Option(600.0, help="Seconds without heartbeat before a shard lease is taken over")
PROGRESS = typer.Option(True, help="Show per-worker progress bars")
THREADS = typer.Option(1, help="Torch threads per CPU worker process (1 keeps outputs identical across --devices)")
DATA = typer.Argument(..., help="A directory of images, a .txt list, or a .csv/.jsonl with a path column")


def _config(cls, preset: str, size, iterations, seed, sets, **extra):
    from pipeline.config import build_config

    return build_config(cls, preset=preset, sets=sets,
                        overrides={"size": size, "iterations": iterations, "seed": seed, **extra})


def _run(task, out: Path, devices: int, device: str, shard_size: int, retry_failed: bool, overwrite: bool,
         lease_ttl: float, progress: bool, threads: int) -> int:
    from pipeline.run.runner import RunOptions, execute

    return execute(task, RunOptions(out=out, shard_size=shard_size, devices=devices, device=device,
                                    overwrite=overwrite, retry_failed=retry_failed, lease_ttl=lease_ttl,
                                    progress=progress, threads=threads))


def _finish(code: int, out: Path) -> None:
    if code == EXIT_SAMPLES_FAILED:
        typer.echo(f"nst: some samples failed; see `nst status {out}`, rerun with --retry-failed to retry them",
                   err=True)
    raise typer.Exit(code)


def _run_method(make_task, out: Path, *run_args, then=None) -> None:
    """Build the Task, run it on the shared runner, then(task, code); NSTError -> one line + its exit code."""
    try:
        task = make_task()
        code = _run(task, out, *run_args)
        if then is not None:
            then(task, code)
    except NSTError as exc:
        fail(exc)
    _finish(code, out)


@app.command()
def texture(
    style: List[Path] = typer.Option(..., "--style", "-s", help="Texture source image or directory (repeatable)"),
    count: Optional[int] = typer.Option(None, help="Textures per source, each with its own seed"),
    out: Path = OUT,
    config: str = typer.Option("texture", "--config", "-c", help="Preset name in configs/ or a YAML file"),
    set_: List[str] = SET, size: Optional[int] = SIZE, iterations: Optional[int] = ITERATIONS,
    seed: Optional[int] = SEED, devices: int = DEVICES, device: str = DEVICE, shard_size: int = SHARD_SIZE,
    retry_failed: bool = RETRY, overwrite: bool = OVERWRITE, lease_ttl: float = LEASE_TTL,
    progress: bool = PROGRESS, threads: int = THREADS,
):
    """Texture synthesis (Gatys et al. 2015): new images with the Gram statistics of each source."""
    from pipeline.io.reader import read_styles
    from pipeline.methods.texture import TextureConfig
    from pipeline.tasks.texture import TextureTask

    _run_method(lambda: TextureTask(_config(TextureConfig, config, size, iterations, seed, set_, count=count),
                                    read_styles(style)),
                out, devices, device, shard_size, retry_failed, overwrite, lease_ttl, progress, threads)


@app.command()
def invert(
    data: Path = DATA, out: Path = OUT,
    config: str = typer.Option("invert", "--config", "-c", help="Preset name in configs/ or a YAML file"),
    set_: List[str] = SET, size: Optional[int] = SIZE, iterations: Optional[int] = ITERATIONS,
    seed: Optional[int] = SEED, devices: int = DEVICES, device: str = DEVICE, shard_size: int = SHARD_SIZE,
    retry_failed: bool = RETRY, overwrite: bool = OVERWRITE, lease_ttl: float = LEASE_TTL,
    progress: bool = PROGRESS, threads: int = THREADS,
):
    """Reconstruct each image from each chosen layer (Mahendran & Vedaldi 2014), plus a comparison sheet."""
    from pipeline.io.reader import read_data
    from pipeline.methods.invert import InvertConfig
    from pipeline.tasks.invert import InvertTask

    _run_method(lambda: InvertTask(_config(InvertConfig, config, size, iterations, seed, set_), read_data(data)),
                out, devices, device, shard_size, retry_failed, overwrite, lease_ttl, progress, threads)


@app.command()
def dream(
    data: Path = DATA, out: Path = OUT,
    octaves: Optional[int] = typer.Option(None, help="Octaves of the image pyramid"),
    octave_scale: Optional[float] = typer.Option(None, help="Size ratio between octaves (> 1)"),
    zoom_frames: Optional[int] = typer.Option(None, help="Extra frames, each zooming into the last"),
    layer: Optional[str] = typer.Option(None, help="Layer to amplify (e.g. block4_conv2)"),
    channel: Optional[int] = typer.Option(None, help="Only this channel of the layer"),
    config: str = typer.Option("dream", "--config", "-c", help="Preset name in configs/ or a YAML file"),
    set_: List[str] = SET, size: Optional[int] = SIZE, iterations: Optional[int] = ITERATIONS,
    seed: Optional[int] = SEED, devices: int = DEVICES, device: str = DEVICE, shard_size: int = SHARD_SIZE,
    retry_failed: bool = RETRY, overwrite: bool = OVERWRITE, lease_ttl: float = LEASE_TTL,
    progress: bool = PROGRESS, threads: int = THREADS,
):
    """DeepDream: gradient ascent on a layer's mean squared activation, with jitter and octaves."""
    from pipeline.io.reader import read_data
    from pipeline.methods.dream import DreamConfig
    from pipeline.tasks.dream import DreamTask

    _run_method(lambda: DreamTask(_config(DreamConfig, config, size, iterations, seed, set_, octaves=octaves,
                                          octave_scale=octave_scale, zoom_frames=zoom_frames, dream_layer=layer,
                                          channel=channel), read_data(data)),
                out, devices, device, shard_size, retry_failed, overwrite, lease_ttl, progress, threads)


@app.command()
def visualize(
    data: Path = DATA, out: Path = OUT,
    config: str = typer.Option("visualize", "--config", "-c", help="Preset name in configs/ or a YAML file"),
    set_: List[str] = SET, size: Optional[int] = SIZE, iterations: Optional[int] = ITERATIONS,
    seed: Optional[int] = SEED, devices: int = DEVICES, device: str = DEVICE, shard_size: int = SHARD_SIZE,
    retry_failed: bool = RETRY, overwrite: bool = OVERWRITE, lease_ttl: float = LEASE_TTL,
    progress: bool = PROGRESS, threads: int = THREADS,
):
    """Zeiler & Fergus: each filter's top-9 over DATA, projected to pixels with a deconvnet, as grids.

    Rerun the same command to redraw the grids from the recorded top-9 (no new pass);
    grid_filters and cell may change between runs.
    """
    from pytorch_lightning.utilities import rank_zero_only

    from pipeline.cli.app import pick_device
    from pipeline.io.reader import read_data
    from pipeline.methods.visualize import VisualizeConfig
    from pipeline.tasks.visualize import VisualizeTask, reduce_and_draw

    def reduce(task, code):
        """Rank 0 merges the per-shard maxima and draws the grids once the map step is done."""
        if code in (EXIT_OK, EXIT_SAMPLES_FAILED) and getattr(rank_zero_only, "rank", 0) == 0:
            written = reduce_and_draw(out, task.cfg, pick_device("cuda" if device.startswith("cuda") else device),
                                      show_progress=progress)
            typer.echo(f"nst visualize: {out / 'visualize' / 'topk.json'}, "
                       + ", ".join(str(p) for p in written), err=True)

    _run_method(lambda: VisualizeTask(_config(VisualizeConfig, config, size, iterations, seed, set_), read_data(data)),
                out, devices, device, shard_size, retry_failed, overwrite, lease_ttl, progress, threads, then=reduce)
