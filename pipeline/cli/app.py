"""The shared Typer app and the helpers every command uses to fail cleanly."""

from __future__ import annotations

import typer

from pipeline.errors import EXIT_BAD_INPUT, NSTError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Neural style transfer and its sister methods over whole datasets.")


def fail(exc: NSTError) -> None:
    """One line on stderr naming the problem, then the error's exit status."""
    typer.echo(f"nst: error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise NSTError(f"device {device!r} requested but CUDA is not available", EXIT_BAD_INPUT)
    if device != "cpu" and not device.startswith("cuda"):
        raise NSTError(f"unknown device {device!r} (cpu, cuda, cuda:N or auto)", EXIT_BAD_INPUT)
    return device
