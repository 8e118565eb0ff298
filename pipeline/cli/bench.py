"""`nst bench`: reference vs production on a fixed workload; prints the table, writes BENCHMARKS.md."""

from __future__ import annotations

import shlex
import sys
from typing import Optional

import typer

from pipeline.cli.app import app, fail
from pipeline.errors import NSTError


@app.command()
def bench(
    device: str = typer.Option("cpu", help="cpu or cuda"),
    size: int = typer.Option(128, help="Image side in pixels (square)"),
    iterations: int = typer.Option(50, help="Loss-and-gradient evaluations per image"),
    batch_size: str = typer.Option("4", help="Production batch size, or a comma list (1,4,8)"),
    precision: str = typer.Option("auto", help="fp32, bf16 or auto, or a comma list (fp32,bf16)"),
    reference_images: Optional[int] = typer.Option(None, help="Images for the reference path (default: largest batch)"),
    random_weights: bool = typer.Option(False, help="Same-shape random weights: timing only"),
    weights_file: Optional[str] = typer.Option(None, help="A VGG16 state-dict file (e.g. an fp16 copy)"),
    memory_sizes: Optional[str] = typer.Option(None, help="Also measure one-image peak memory at these sizes"),
    coarse_to_fine: bool = typer.Option(False, help="Also run the coarse-to-fine schedule: half the evaluations "
                                        "at half size, then full size from the upsampled result"),
    coarse_budget: float = typer.Option(1.2, help="Coarse-to-fine evaluations per production evaluation "
                                        "(1.2 = the default preset's 360 against 300)"),
    adam_row: bool = typer.Option(False, help="Also run the largest batch with Adam (the network's share)"),
    history: int = typer.Option(20, help="L-BFGS history (pairs) of the production path; the reference keeps torch's 100"),
    compile: Optional[str] = typer.Option(None, "--compile", help="Also run the production row under torch.compile "
                                          "modes: default, reduce-overhead (CUDA graphs), max-autotune (comma list)"),
    pooling: str = typer.Option("max", help="max (the classic workload) or avg (the default preset's), both paths"),
    profile: bool = typer.Option(False, help="Also print a torch.profiler table of a few production evaluations"),
    quality_points: int = typer.Option(10, help="fp32 losses at this many points of each production run: when it "
                                       "reaches the reference's final loss (0: off)"),
    save: Optional[str] = typer.Option(None, help="Write the JSON record here (e.g. benchmarks/results/cpu.json)"),
    markdown: Optional[str] = typer.Option(None, help="Then re-render this file (BENCHMARKS.md) from the records beside --save"),
):
    """Benchmark the plain reference path against the production path on one fixed workload."""
    from pipeline.bench.cli import execute
    from pipeline.run.signals import Stopped, install_stop_signals

    install_stop_signals(raise_at_once=True)  # nothing to finish: a stop ends the measurement, saves nothing
    try:
        execute(device, size, iterations, batch_size, precision, reference_images, random_weights,
                weights_file, memory_sizes, coarse_to_fine, adam_row, history, save, markdown,
                "nst bench " + " ".join(shlex.quote(a) for a in sys.argv[2:]), compile_modes=compile, profile=profile,
                pooling=pooling, coarse_budget=coarse_budget, quality_points=quality_points)
    except NSTError as exc:
        fail(exc)
    except Stopped as stop:
        typer.echo(f"nst: stopped by {stop.signame}: benchmark cut short, no partial result written", err=True)
        raise typer.Exit(stop.exit_code)
