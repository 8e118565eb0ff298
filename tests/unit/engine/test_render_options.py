"""RenderOptions is where a render's settings are checked, once, before any work starts."""

import pytest

from pipeline.engine.loop import RenderOptions


@pytest.mark.parametrize("field,value", [("iterations", 0), ("optimizer", "sgd"), ("lr", 0.0), ("history", 0),
                                         ("log_every", 0), ("snapshot_every", -1), ("max_step", 0.0),
                                         ("compile", "fast")])
def test_bad_option_is_named(field, value):
    with pytest.raises(ValueError, match=field):
        RenderOptions(5, **{field: value}) if field != "iterations" else RenderOptions(value)


def test_defaults_are_valid():
    assert RenderOptions(1).optimizer == "lbfgs"
