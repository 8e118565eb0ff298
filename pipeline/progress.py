"""Progress display for long-running commands: done/total, rate, ETA."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm  # a widget in notebooks (the Python API), the text bar in a terminal


def bar(total: int, desc: str, unit: str = "it", position: int = 0, disable: bool = False) -> tqdm:
    """A tqdm bar on stderr that shows done/total, rate and ETA (also when not a TTY:
    batch logs need progress too, so it is printed every 5 s there)."""
    return tqdm(total=total, desc=desc, unit=unit, position=position, dynamic_ncols=True,
                file=sys.stderr, disable=disable, mininterval=0.5 if sys.stderr.isatty() else 5.0,
                leave=True)


def fmt_loss(v: float) -> str:
    return f"{v:.3e}"


def format_duration(seconds: float | None) -> str:
    """A duration as 1h02m03s ('-' when unknown): ETAs in `nst status`, --watch and the report."""
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"
