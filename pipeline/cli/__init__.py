"""`nst`: the command-line interface, a thin layer over pipeline.api and the runner.

`app.py` builds the Typer app; each module below adds one group of commands to it.
The console entry point is `nst = "pipeline.cli:main"`.
"""

from pipeline.cli import one, info, bench, dataset, report, methods, slurm  # noqa: F401,I001  (each registers its commands, in help order)
from pipeline.cli.app import app


def main() -> None:
    app()
