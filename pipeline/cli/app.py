"""The shared Typer app and the helpers every command uses to fail cleanly."""

from __future__ import annotations

from typing import Optional

import typer

from pipeline.errors import NSTError

# Typer's --install-completion / --show-completion (bash, zsh, fish, PowerShell)
app = typer.Typer(add_completion=True, no_args_is_help=True,
                  help="Neural style transfer and its sister methods over whole datasets.")

# a config key with a flag of its own on `nst one` and `nst stylize` (the run options are in run/execute/options.py)
MAX_MEMORY = typer.Option(None, "--max-memory", help="Cap the memory estimate (e.g. 8G, 512MiB): a size "
                          "over it is evaluated in tiles (tile: auto) or refused; same as --set max_memory=SIZE")


def _print_version(value: bool) -> None:
    if value:
        from pipeline.version import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _main(version: Optional[bool] = typer.Option(None, "--version", callback=_print_version, is_eager=True,
                                                 help="Print the version and exit")) -> None:
    """Neural style transfer and its sister methods over whole datasets."""


def fail(exc: NSTError) -> None:
    """One line on stderr naming the problem, then the error's exit status."""
    typer.echo(f"nst: error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)

