"""The report's pictures: distributions of final losses and of seconds per sample, and loss
curves where a run recorded them. matplotlib (Agg) to SVG files the page links to."""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

from pipeline.io.atomic import atomic_write_bytes

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams.update({"svg.hashsalt": "nst-report", "font.size": 9})  # the same SVG for the same data


def _save(fig, path: Path) -> Path:
    """Write the figure durably under a name of its own (a killed report leaves the old file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def loss_histogram(values: list[float], label: str, path: Path) -> Path | None:
    """Final loss per ok sample; a log10 axis when the losses span more than 100x."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    log = min(finite) > 0 and max(finite) / min(finite) > 100
    data = [math.log10(v) for v in finite] if log else finite
    fig, ax = plt.subplots(figsize=(4.6, 2.6))
    ax.hist(data, bins=min(40, max(5, len(data) // 3)), color="#3b6ea5")
    ax.set_xlabel(f"log10 {label}" if log else label)
    ax.set_ylabel("samples")
    ax.set_title(f"final {label} ({len(finite)} samples)")
    return _save(fig, path)


def seconds_histogram(by_device: dict[str, list[float]], path: Path) -> Path | None:
    """Seconds per sample, one stacked colour per device (host/device)."""
    series = {d: v for d, v in by_device.items() if v}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(4.6, 2.6))
    n = sum(len(v) for v in series.values())
    ax.hist(list(series.values()), bins=min(40, max(5, n // 3)), stacked=True, label=list(series))
    ax.set_xlabel("seconds per sample")
    ax.set_ylabel("samples")
    ax.set_title(f"seconds per sample ({n} samples)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def loss_curves(curves: dict[str, list], path: Path) -> Path | None:
    """Loss against evaluation for a few sampled samples (key -> [[evaluation, loss], ...])."""
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(4.6, 2.6))
    for key, points in curves.items():
        ax.plot([e for e, _ in points], [v for _, v in points], label=key, marker=".")
    if all(v > 0 for points in curves.values() for _, v in points):
        ax.set_yscale("log")
    ax.set_xlabel("evaluation")
    ax.set_ylabel("loss")
    ax.set_title("loss curves (sampled)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def look_scatter(points: list[tuple[float, float]], path: Path) -> Path | None:
    """Structure against style match per ok sample (the ruler of `nst look`): where a run's
    outputs sit between the content (structure 1, style match 0) and the style (style match 1)."""
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(4.6, 2.6))
    ax.scatter([s for _, s in points], [t for t, _ in points], s=10, color="#3b6ea5")
    ax.set_xlabel("style match")
    ax.set_ylabel("structure")
    ax.set_xlim(min(0.0, *(s for _, s in points)), 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_title(f"the look ({len(points)} samples)")
    return _save(fig, path)
