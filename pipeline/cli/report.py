"""`nst report`: a static HTML page of a run (live or finished, any method)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pipeline.cli.app import app, fail
from pipeline.errors import NSTError


@app.command()
def report(
    run: Path = typer.Argument(..., help="Run directory (live or finished)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Report directory (default RUN/report)"),
    samples: int = typer.Option(24, "--samples", "-n", help="Samples on the contact sheet"),
    seed: int = typer.Option(0, "--seed", help="Which samples: the same seed gives the same contact sheet"),
):
    """Write RUN/report/index.html: counts, throughput, ETA, failures, plots and a contact sheet."""
    from pipeline.io.oserrors import is_output_error, output_error
    from pipeline.report.build import ReportOptions, make_report

    try:
        try:
            result = make_report(ReportOptions(run=run, out=out, samples=samples, seed=seed))
        except OSError as exc:  # a full disk or a failed write of the page: one line, exit 6/7/8
            if not is_output_error(exc):
                raise
            raise output_error(exc, out or run / "report", resume=False) from None
    except NSTError as exc:
        fail(exc)
    f = result.figures
    typer.echo(f"nst report: {f['ok']} ok, {f['failed']} failed, {f['pending']} pending of {f['planned']}; "
               f"{len(result.sampled)} samples on the contact sheet ({result.seconds:.1f} s)")
    typer.echo(str(result.index))
