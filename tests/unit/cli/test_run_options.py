"""Every dataset command takes every run option, declared once in run/execute/options.py."""

from __future__ import annotations

import dataclasses

import pytest
import typer.main
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import EXIT_BAD_INPUT
from pipeline.run.execute.options import RunOptions

DATASET_COMMANDS = ["stylize", "texture", "invert", "dream", "visualize", "imagine"]
RUN_FLAGS = [f.name for f in dataclasses.fields(RunOptions) if f.metadata.get("help")]


def _command(name: str):
    return typer.main.get_command(app).commands[name]


@pytest.mark.parametrize("name", DATASET_COMMANDS)
def test_every_dataset_command_takes_every_run_option(name):
    params = {p.name for p in _command(name).params}
    assert set(RUN_FLAGS) <= params, sorted(set(RUN_FLAGS) - params)
    overlap = next(p for p in _command(name).params if p.name == "overlap")
    assert "--no-overlap" in overlap.secondary_opts


@pytest.mark.parametrize("name", ["invert", "dream"])
def test_a_bad_run_option_is_one_line_and_exit_2_for_every_command(name, tmp_path):
    r = CliRunner().invoke(app, [name, str(tmp_path), "--out", str(tmp_path / "run"), "--devices", "0",
                                 "--no-overlap"])
    assert r.exit_code == EXIT_BAD_INPUT
    assert r.output.strip().splitlines() == ["nst: error: --devices must be >= 1, got 0"]
