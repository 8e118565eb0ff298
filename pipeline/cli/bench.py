"""`nst bench`: the classic run against the production path; prints the table, writes BENCHMARKS.md.

The options are defined once, in pipeline.bench.cli (`nst bench --help` lists them), so
`python -m pipeline.bench` takes the same ones without Typer installed.
"""

from __future__ import annotations

import typer

from pipeline.cli.app import app


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def bench(ctx: typer.Context):
    """The classic run (the quality bar) against the production path: evaluations and time to quality."""
    from pipeline.bench.cli import main as bench_main
    from pipeline.bench.look import main as look_main
    from pipeline.run.execute.signals import Stopped, install_stop_signals

    install_stop_signals(raise_at_once=True)  # nothing to finish: a stop ends the measurement, saves nothing
    try:
        code = (look_main if "--look" in ctx.args else bench_main)(list(ctx.args), "nst bench")
    except Stopped as stop:
        typer.echo(f"nst: stopped by {stop.signame}: benchmark cut short, no partial result written", err=True)
        raise typer.Exit(stop.exit_code)
    raise typer.Exit(code)
