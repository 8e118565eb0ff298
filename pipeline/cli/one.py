"""`nst one`: stylize one image (pipeline.api.run_one)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.app import DETERMINISTIC, MAX_MEMORY, THREADS, app, fail
from pipeline.errors import NSTError


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
    threads: Optional[int] = THREADS,
    deterministic: bool = DETERMINISTIC,
    max_memory: Optional[str] = MAX_MEMORY,
):
    """Stylize one content image with one or more style images."""
    from pipeline.api import run_one
    from pipeline.run.signals import Stopped, install_stop_signals

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
