"""The bench's argument types and its parser whose errors are one line (`nst bench` and `--look` share them)."""

from __future__ import annotations

import argparse

from pipeline.errors import BadInput


def int_list(name: str, raw: str) -> list[int]:
    try:
        values = [int(v) for v in str(raw).split(",") if v.strip()]
    except ValueError:
        raise BadInput(f"{name} must be a positive integer or a comma list of them, got {raw!r}")
    if not values or any(v <= 0 for v in values):
        raise BadInput(f"{name} must be a positive integer or a comma list of them, got {raw!r}")
    return values


def precision_list(raw: str) -> list[str]:
    values = [v.strip() for v in str(raw).split(",") if v.strip()]
    bad = [v for v in values if v not in ("fp32", "bf16", "auto")]
    if not values or bad:
        raise BadInput(f"precision must be fp32, bf16 or auto (or a comma list), got {raw!r}")
    return values


def compile_list(raw: str | None) -> list[str]:
    from pipeline.engine.compiled import COMPILE_MODES

    values = [v.strip() for v in str(raw or "").split(",") if v.strip()]
    bad = [v for v in values if v not in COMPILE_MODES or v in ("none", "auto")]
    if bad:
        raise BadInput(f"compile must be default, reduce-overhead or max-autotune (or a comma list), got {raw!r}")
    return values


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line with exit status 2, like every other command's."""

    def error(self, message):
        raise BadInput(message)
