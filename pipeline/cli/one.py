"""`nst`: the command-line interface. Thin: parses options, calls tasks and the runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from pipeline import __version__
from pipeline.cli.app import app, fail, pick_device
from pipeline.errors import EXIT_BAD_INPUT, NSTError


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
):
    """Stylize one content image with one or more style images."""
    from pipeline.api import run_one

    try:
        if len(images) < 2:
            raise NSTError(f"need a content image and at least one style image, got {len(images)} path(s)")
        run_one(images[0], images[1:], output, config, size, iterations, seed, set_, save_every,
                pick_device(device))
    except NSTError as exc:
        fail(exc)


@app.command()
def weights(
    verify: bool = typer.Option(True, help="Load and verify each backbone that is present"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
):
    """Show where each backbone's weights come from and verify them."""
    from pipeline.models.weights import describe_backbones

    rows = describe_backbones(verify=verify)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(f"{row['name']}: {row['status']}")
        typer.echo(f"  source: {row['source']}")
        for key in ("onnx", "cache", "path", "state_digest", "probes"):
            if row.get(key):
                typer.echo(f"  {key}: {row[key]}")
    if rows[0]["status"] != "ok":
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
def version():
    """Print the package version."""
    typer.echo(__version__)
