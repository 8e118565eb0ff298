"""The README's parameter and exit tables are what the code renders (pipeline/readme.py)."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline import errors, readme
from pipeline.config import PARAMETER_HELP, StyleConfig


def test_the_readme_tables_are_rendered_from_the_code():
    text = readme.README.read_text()
    assert readme.render(text) == text, "README tables are stale: run `python -m pipeline.readme`"


def test_every_key_and_every_exit_status_has_its_row():
    assert set(PARAMETER_HELP) == {f.name for f in dataclasses.fields(StyleConfig)}
    codes = {getattr(errors, n) for n in dir(errors) if n.startswith("EXIT_") and n != "EXIT_MEANINGS"}
    assert codes == set(errors.EXIT_MEANINGS)
    table = readme.exit_table()
    assert all(f"\n| {code} | " in table for code in codes)


def test_a_stale_table_is_seen():
    text = readme.README.read_text().replace("| 75 | stopped", "| 74 | stopped")
    assert readme.render(text) != text
    with pytest.raises(ValueError, match="parameters"):
        readme.render("no markers here")
