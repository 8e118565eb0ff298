"""Which style each content image gets: one, cycle, random (seeded), all."""

from __future__ import annotations

import pytest

from pipeline.errors import BadInput
from pipeline.io.reader import InputRow
from pipeline.run.task import Planned
from pipeline.tasks.stylize import assign_styles

ROWS = [InputRow(f"c{i}.png") for i in range(5)]
STYLES = ["s0.png", "s1.png", "s2.png"]


def test_assign_one_uses_every_style_for_every_content():
    plan = assign_styles(ROWS, STYLES, "one", seed=0)
    assert [p.styles for p in plan] == [tuple(STYLES)] * 5


def test_assign_cycle():
    plan = assign_styles(ROWS, STYLES, "cycle", seed=0)
    assert [p.styles[0] for p in plan] == ["s0.png", "s1.png", "s2.png", "s0.png", "s1.png"]


def test_assign_random_is_seeded_and_reproducible():
    a = [p.styles for p in assign_styles(ROWS * 4, STYLES, "random", seed=3)]
    assert a == [p.styles for p in assign_styles(ROWS * 4, STYLES, "random", seed=3)]
    assert a != [p.styles for p in assign_styles(ROWS * 4, STYLES, "random", seed=4)]
    assert {s for (s,) in a} == set(STYLES)


def test_assign_all_is_the_cross_product_and_rows_may_fix_their_style():
    plan = assign_styles(ROWS[:2], STYLES, "all", seed=0)
    assert [(p.source, p.styles[0]) for p in plan] == [(c.path, s) for c in ROWS[:2] for s in STYLES]
    fixed = list(assign_styles([InputRow("x.png", "mine.png", "k1")], STYLES, "all", seed=0))
    assert fixed == [Planned("x.png", ("mine.png",), {"assign": "row", "source_key": "k1"})]
    with pytest.raises(BadInput, match="--assign must be one of"):
        assign_styles(ROWS, STYLES, "some", seed=0)
