"""`nst`: the command-line interface, a thin layer over pipeline.api and the runner.

`app.py` builds the Typer app; each module below adds one group of commands to it.
The console entry point is `nst = "pipeline.cli:main"`.
"""

from pipeline.cli import one, look, info, bench, dataset, report, methods, video, slurm  # noqa: F401,I001  (each registers its commands, in help order)
from pipeline.cli.app import app


def main() -> None:
    import sys

    from pipeline.errors import EXIT_SIGINT

    try:
        app()
    except KeyboardInterrupt:  # Ctrl-C before a command installed its handlers (while planning)
        print("nst: stopped by SIGINT before any work was done", file=sys.stderr)
        sys.exit(EXIT_SIGINT)
