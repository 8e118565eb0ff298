"""`nst look CONTENT STYLE OUTPUT...`: the ruler of the look (pipeline.methods.look) on files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.app import app, fail
from pipeline.cli.run_options import option
from pipeline.errors import NSTError


def _number(x: float) -> str:
    return "nan" if x != x else f"{x:.4f}"


@app.command()
def look(
    images: List[Path] = typer.Argument(..., help="CONTENT STYLE OUTPUT [OUTPUT...]"),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per output: structure, style_match"),
    threads: Optional[int] = option("threads"),
):
    """Score stylized outputs: structure (SSIM of luminance with the content) and style match
    (EfficientNet-Lite0 Gram statistics), both at a viewing size of 256 px."""
    try:
        if len(images) < 3:
            raise NSTError(f"need CONTENT STYLE OUTPUT [OUTPUT...], got {len(images)} path(s)")
        import torch

        from pipeline.io.images import load_image
        from pipeline.methods.look import LookRuler
        from pipeline.run.execute.threads import resolve_threads

        torch.set_num_threads(resolve_threads(threads))
        content, style, *outputs = (load_image(p) for p in images)
        looks = LookRuler().score(content, style, outputs)
    except NSTError as exc:
        fail(exc)
    for path, result in zip(images[2:], looks):
        if as_json:
            typer.echo(json.dumps({"output": str(path), **result.as_dict()}))
        else:
            typer.echo(f"{path}: structure {_number(result.structure)}  style match {_number(result.style_match)}")
