"""`nst weights`, `nst presets`, `nst version`: what is installed."""

from __future__ import annotations

import json

import typer

from pipeline.version import __version__
from pipeline.cli.app import app
from pipeline.errors import EXIT_BAD_INPUT


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
def presets():
    """List the bundled presets (--config NAME), each with what it is for."""
    from pipeline.config import describe_preset, preset_dir, preset_names

    names = preset_names()
    width = max(map(len, names))
    for name in names:
        typer.echo(f"{name:<{width}}  {describe_preset(name)}")
    typer.echo(f"({preset_dir()}; a YAML file of your own layers on its command's preset, or on `base: NAME`)")


@app.command()
def version():
    """Print the package version (also `nst --version`)."""
    typer.echo(__version__)
