"""The run options of every dataset command, made once from RunOptions' fields.

`@run_command` gives a command function one Typer option per RunOptions field (its flag, default and
help come from the field) and hands the function one validated RunOptions as `run`. So a new run
option reaches every dataset command by one declaration in run/execute/options.py.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing

import typer

from pipeline.cli.app import fail
from pipeline.errors import NSTError
from pipeline.run.execute.options import RunOptions


def _cli_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(RunOptions) if f.metadata.get("help")]


def _parameter(f: dataclasses.Field, hints: dict) -> inspect.Parameter:
    default = ... if f.default is dataclasses.MISSING else f.default
    info = typer.Option(default, *f.metadata["flags"], help=f.metadata["help"])
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=hints[f.name])


def option(name: str):
    """The Typer option of one RunOptions field, for a command that is not a dataset run (`nst one`)."""
    f = next(f for f in _cli_fields() if f.name == name)
    return _parameter(f, typing.get_type_hints(RunOptions)).default


def run_command(func=None, *, exclude: tuple[str, ...] = ()):
    """func(..., run: RunOptions) -> a command taking func's own parameters plus every run option
    (but those in `exclude`, which keep their defaults: `nst video` never splits a clip by --shard-size)."""
    if func is None:
        return functools.partial(run_command, exclude=exclude)
    hints = typing.get_type_hints(RunOptions)
    fields = [f for f in _cli_fields() if f.name not in exclude]
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
           for p in inspect.signature(func, eval_str=True).parameters.values() if p.name != "run"]

    @functools.wraps(func)
    def command(**params):
        values = {f.name: params.pop(f.name) for f in fields}
        try:
            run = RunOptions(**values).validate()
        except NSTError as exc:
            fail(exc)
        return func(**params, run=run)

    command.__signature__ = inspect.Signature(own + [_parameter(f, hints) for f in fields])
    del command.__wrapped__  # Typer must read the signature above (types resolved), not func's
    command.__annotations__ = {}
    return command
