"""`nst stylize`, `nst status`, `nst verify`: the dataset pipeline's commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.app import MAX_MEMORY, app, fail
from pipeline.cli.run_options import run_command
from pipeline.errors import EXIT_OK, EXIT_SAMPLES_FAILED, EXIT_VERIFY_FAILED, BadInput, NSTError
from pipeline.run.execute.options import RunOptions


@app.command()
@run_command
def stylize(
    data: str = typer.Argument(..., help="A directory of images, a .txt list, a .csv/.jsonl with a path column, "
                               "or webdataset shards (a folder of .tar, data/{00000..00099}.tar, shardindex.json)"),
    style: List[Path] = typer.Option([], "--style", "-s", help="Style image or directory (repeatable)"),
    config: str = typer.Option("default", "--config", "-c", help="Preset name in configs/ or a YAML file"),
    set_: List[str] = typer.Option([], "--set", help="Override any config key: key=value"),
    size: Optional[int] = typer.Option(None, help="Longest side of the output in pixels"),
    iterations: Optional[int] = typer.Option(None, help="Loss-and-gradient evaluations per image"),
    seed: Optional[int] = typer.Option(None, help="Run seed (per-sample seeds derive from it)"),
    shard_order: str = typer.Option("size", help="size: a shard holds images of the same working size and "
                                    "styles where it can (batches fill on mixed datasets); input: shards "
                                    "follow the input order. Fixed when the run is planned"),
    assign: str = typer.Option("one", help="Style assignment: one, random, cycle or all"),
    styles_per_image: int = typer.Option(1, help="With --assign random: N stylized versions per image, each "
                                         "with its own seeded style and key suffix"),
    label_from: Optional[str] = typer.Option(None, help="parent (the class folder) or column:NAME: writes a .cls "
                                             "member and DIR/classes.json"),
    key_from: Optional[str] = typer.Option(None, help="index (files' default) or path (the relative path, "
                                           "sanitised; tars' default is their __key__)"),
    plan_only: bool = typer.Option(False, "--plan-only", help="Write (or check) DIR/run.json, then exit; "
                                   "`nst submit` uses it before sbatch"),
    max_memory: Optional[str] = MAX_MEMORY,
    run: RunOptions = None,
):
    """Stylize every image of DATA into webdataset tar shards with manifests (resumable)."""
    from pipeline.io.oserrors import is_output_error, output_error
    from pipeline.run.execute.runner import execute
    from pipeline.run.folder.plan import plan_run
    from pipeline.run.views.estimate import estimate_cost
    from pipeline.tasks.registry import method_config, method_task

    try:
        set_ = [*set_, f"max_memory={max_memory}"] if max_memory is not None else set_
        cfg = method_config("stylize", config, {"size": size, "iterations": iterations, "seed": seed}, set_)
        task = method_task("stylize", cfg, data=data, styles=style, assign=assign, shard_order=shard_order,
                               device=run.device, styles_per_image=styles_per_image, label_from=label_from,
                               key_from=key_from)
        if plan_only:
            try:
                plan = plan_run(run.out, task, run.shard_size, overwrite=run.overwrite, hash_inputs=run.hash_inputs)
            except OSError as exc:  # a failed write or fsync of the plan: one line, exit 6/7/8
                if not is_output_error(exc):
                    raise
                raise output_error(exc, run.out, resume=False) from None
            typer.echo(f"nst: run plan {plan.root / 'run.json'}: {plan.total} samples in {len(plan.shards)} shards")
            typer.echo("\n".join(estimate_cost(plan, task, run.device).lines()))
            raise typer.Exit(EXIT_OK)
        code = execute(task, run)
    except NSTError as exc:
        fail(exc)
    raise typer.Exit(code)


@app.command()
def status(
    out: Path = typer.Argument(..., help="Run directory"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
    watch: bool = typer.Option(False, "--watch", help="One live line (done/total, rate, ETA, failures, stale "
                               "leases) refreshed every --interval seconds; exits when the run completes "
                               "(0: all ok, 3: some failed)"),
    interval: float = typer.Option(2.0, help="Seconds between refreshes with --watch"),
):
    """Where a run stands: counts, shards, rate, ETA, most frequent errors."""
    from pipeline.run.folder.plan import load_run
    from pipeline.run.views.status import format_table, summarize

    try:
        if watch:
            from pipeline.run.views.watch import watch_until_complete

            if interval <= 0:
                raise BadInput(f"--interval must be > 0 seconds, got {interval}")
            try:
                summary = watch_until_complete(out, interval)
            except KeyboardInterrupt:
                raise typer.Exit(130)
            raise typer.Exit(EXIT_OK if summary["failed"] == 0 else EXIT_SAMPLES_FAILED)
        summary = summarize(load_run(out))
    except NSTError as exc:
        fail(exc)
    typer.echo(json.dumps(summary, indent=1) if as_json else format_table(summary))


@app.command()
def verify(
    out: Path = typer.Argument(..., help="Run directory"),
):
    """Check every shard against its commit record, keys, and one manifest row per planned sample."""
    from pipeline.run.folder.plan import load_run
    from pipeline.run.views.verify import verify_run

    try:
        plan = load_run(out)
        problems = verify_run(plan)
    except NSTError as exc:
        fail(exc)
    for p in problems:
        typer.echo(f"nst verify: {p}", err=True)
    if problems:
        typer.echo(f"nst verify: {len(problems)} problem(s) in {out}", err=True)
        raise typer.Exit(EXIT_VERIFY_FAILED)
    typer.echo(f"nst verify: {out} is consistent ({len(plan.shards)} shards, {plan.total} planned samples)")
    raise typer.Exit(EXIT_OK)


@app.command()
def export(
    out: Path = typer.Argument(..., help="Run directory (complete)"),
    to: Path = typer.Option(..., "--to", help="Folder to write (created; an interrupted export resumes)"),
    format: str = typer.Option("folder", "--format", help="folder: an ImageFolder tree mirroring the inputs"),
    progress: bool = typer.Option(True, help="Show a progress bar"),
):
    """Write a finished run's images as a folder tree that mirrors the inputs' relative paths."""
    from pipeline.run.views.export import export_run

    try:
        written, skipped = export_run(out, to, format, progress)
    except NSTError as exc:
        fail(exc)
    typer.echo(f"nst export: {written} images written, {skipped} already there, in {to}")
    raise typer.Exit(EXIT_OK)
