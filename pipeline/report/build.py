"""`nst report RUN`: collect, sample, thumbnail, plot and write RUN/report/index.html.

Reads only committed shards (their manifests, and the tars of sampled members
only) plus the durable journal lines `nst status` counts, so it is safe on a
live run. Everything it writes goes under the report directory.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.version import __version__
from pipeline.errors import BadInput
from pipeline.io.atomic import atomic_write_bytes, atomic_write_text, remove_stale_temps
from pipeline.report import html, plots
from pipeline.report.collect import device_label, failures, figures, final_loss, input_path, read_run, retry_input
from pipeline.report.sample import sample_rows
from pipeline.report.thumbs import TarMembers, copy_file, sample_output, sample_record, thumb_from_bytes, \
    thumb_from_file
from pipeline.run.task import OK
from pipeline.run.execute.options import LEASE_TTL

CONFIG_SUMMARY_KEYS = ("size", "iterations", "optimizer", "init", "pooling", "precision", "network",
                       "content_layer", "invert_layers", "dream_layers", "vis_layers", "output_format")


@dataclass
class ReportOptions:
    run: Path
    out: Path | None = None      # default RUN/report
    samples: int = 24            # contact-sheet size
    seed: int = 0                # which samples; the same seed gives the same sheet
    lease_ttl: float = LEASE_TTL


@dataclass
class ReportResult:
    index: Path
    figures: dict
    sampled: list[str] = field(default_factory=list)
    tars_opened: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _preset(launches: list[dict]) -> str:
    """The --config a run was started with (the last launch's), "default" when none was named."""
    for launch in reversed(launches):
        argv = shlex.split(launch.get("command", ""))
        for i, arg in enumerate(argv):
            if arg in ("--config", "-c") and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith("--config="):
                return arg.split("=", 1)[1]
        return "default"
    return "not recorded"


def _config_line(config: dict, launches: list[dict]) -> str:
    parts = [f"preset {_preset(launches)}"]
    for k in CONFIG_SUMMARY_KEYS:
        if k in config and config[k] is not None:
            v = config[k]
            parts.append(f"{k} {','.join(map(str, v)) if isinstance(v, list) else v}")
    return "; ".join(parts)


def _devices_line(launches: list[dict], rows: list[dict]) -> str:
    starts = Counter(f"{l.get('host')}: {l.get('devices')} x {l.get('accelerator')}" for l in launches)
    used = Counter(device_label(r) for r in rows if r.get("worker"))
    parts = [f"{k} ({n} start{'s' * (n > 1)})" for k, n in starts.items()]
    if used:
        parts.append("samples by " + ", ".join(f"{d} ({n})" for d, n in used.most_common()))
    return "; ".join(parts)


def _card(row: dict, out: Path, reader: TarMembers, data_root: str | None = None,
          style_root: str | None = None) -> dict:
    thumbs = out / "thumbs"
    source = input_path(row.get("source"), data_root)
    styles = [input_path(s, style_root) for s in row.get("styles") or []]
    try:
        made = sample_output(row, reader, out)
        record = sample_record(row, reader, out) or {}
    except (OSError, KeyError, ValueError) as exc:  # replaced or damaged since it was committed
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # writing the report failed (EIO, a full disk): not the sample's problem
        made, record, problem = None, {}, f"output unreadable: {exc}"
    else:
        problem = None
    content = thumb_from_file(source, thumbs) if source else None
    style = thumb_from_file(styles[0], thumbs) if styles else None
    rel = lambda p: None if p is None else os.path.relpath(p, out)  # noqa: E731
    return {"key": row["key"], "content": rel(content), "style": rel(style), "content_path": source,
            "style_path": styles[0] if styles else None,
            "thumb": rel(made[0]) if made else None, "full": rel(made[1]) if made else None,
            "loss": final_loss(row), "seconds": row.get("seconds"), "device": device_label(row),
            "source_name": Path(source or (styles[0] if styles else "")).name,
            "source_title": source or ", ".join(styles), "problem": problem,
            "curve": record.get("loss_curve"), "structure": row.get("structure"),
            "style_match": row.get("style_match")}


def make_report(opts: ReportOptions) -> ReportResult:
    start = time.perf_counter()
    if opts.samples < 0:
        raise BadInput(f"--samples must be >= 0, got {opts.samples}")
    view = read_run(opts.run, opts.lease_ttl)
    out = Path(opts.out) if opts.out else view.root / "report"
    out.mkdir(parents=True, exist_ok=True)
    for folder in (out, out / "thumbs", out / "full", out / "plots"):
        remove_stale_temps(folder)  # what a killed report left
    figs = figures(view)
    committed = view.committed_rows
    ok_rows = [r for r in committed if r["status"] == OK]

    reader = TarMembers(view.root)
    chosen = sample_rows(committed, opts.samples, opts.seed)
    data_root = view.plan.data.get("data_root")
    cards = [_card(r, out, reader, data_root, view.plan.data.get("style_root")) for r in chosen]

    plot_files, notes = [], []
    losses = [v for v in (final_loss(r) for r in ok_rows) if v is not None]
    per_device: dict[str, list[float]] = defaultdict(list)
    for r in ok_rows:
        if isinstance(r.get("seconds"), (int, float)):
            per_device[device_label(r)].append(float(r["seconds"]))
    curves = {c["key"]: c["curve"] for c in cards if c["curve"]}
    curves = dict(list(curves.items())[:6])
    looks = [(float(r["structure"]), float(r["style_match"])) for r in ok_rows
             if isinstance(r.get("structure"), (int, float)) and isinstance(r.get("style_match"), (int, float))]
    for made in (plots.loss_histogram(losses, "loss", out / "plots" / "loss.svg"),
                 plots.seconds_histogram(per_device, out / "plots" / "seconds.svg"),
                 plots.loss_curves(curves, out / "plots" / "curves.svg"),
                 plots.look_scatter(looks, out / "plots" / "look.svg")):
        if made is not None:
            plot_files.append(os.path.relpath(made, out))
    if not losses:
        notes.append("no final losses recorded by this method")
    if not curves:
        notes.append("no loss curves recorded for the sampled samples")

    groups = failures(committed)
    failed_txt = None
    if groups:
        lines = sorted({p for rows in groups.values() for p in (retry_input(r, data_root) for r in rows) if p})
        atomic_write_text(out / "failed.txt", "".join(f"{p}\n" for p in lines))
        failed_txt = "failed.txt"
    elif (out / "failed.txt").exists():
        (out / "failed.txt").unlink()

    grids = []
    for grid in sorted((view.root / "visualize").glob("*.png")):  # nst visualize's top-9 grids
        full = copy_file(grid, out / "full" / f"grid-{grid.name}")
        thumb = out / "thumbs" / f"grid-{grid.stem}.jpg"
        if thumb.exists() and thumb.stat().st_mtime < full.stat().st_mtime:
            thumb.unlink()
        thumb_from_bytes(full.read_bytes(), thumb, side=1200)
        grids.append((grid.stem, os.path.relpath(thumb, out), os.path.relpath(full, out)))

    videos = []
    for record in sorted((view.root / "videos").glob("*.json")):  # nst video: each finished clip
        from pipeline.tasks.video_finish import frame_strip

        meta = json.loads(record.read_text())
        meta["mp4_link"] = os.path.relpath(view.root / meta["mp4"], out)
        full = out / "full" / f"strip-{meta['video']}.png"
        data = frame_strip(view.root, meta)
        if not full.exists() or full.read_bytes() != data:
            atomic_write_bytes(full, data, durable=False)
            (out / "thumbs" / f"strip-{meta['video']}.jpg").unlink(missing_ok=True)
        thumb = thumb_from_bytes(data, out / "thumbs" / f"strip-{meta['video']}.jpg", side=1200)
        videos.append((meta, os.path.relpath(thumb, out), os.path.relpath(full, out)))

    data = view.plan.data
    info = {"run": str(view.root), "made_at": time.time(), "version": __version__, "figures": figs,
            "launches": view.launches, "config": data.get("config", {}),
            "config_line": _config_line(data.get("config", {}), view.launches),
            "weights_digest": data.get("weights_digest"),
            "devices_line": _devices_line(view.launches, view.all_rows)}
    page = html.page(info, plot_files, notes, html.failures_section(groups, failed_txt), grids,
                     html.contact_sheet(cards, len(ok_rows), opts.seed), html.videos_section(videos))
    index = out / "index.html"
    atomic_write_text(index, page)
    result = ReportResult(index, figs, [r["key"] for r in chosen], list(reader.opened),
                          round(time.perf_counter() - start, 3))
    atomic_write_text(out / "report.json", json.dumps(
        {"figures": figs, "sampled": result.sampled, "tars_opened": result.tars_opened,
         "failures": {k: [r["key"] for r in v] for k, v in groups.items()}, "seconds": result.seconds},
        indent=1))
    return result
