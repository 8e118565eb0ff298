"""Formatting measured bench results: the printed table, the JSON record, BENCHMARKS.md.

BENCHMARKS.md is rendered only from the JSON records in benchmarks/results/, which
only `nst bench --save` (or benchmarks/gpu.sh through it) writes: no figure is typed
by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.io.atomic import atomic_write_text
from pipeline.resources import data_dir

JITTERED = "classic, jittered start"  # the path of the classic row run from a jittered start

RESULTS_DIR = data_dir("benchmarks/results")

def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    import platform

    model = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model


COLUMNS = ["path", "precision", "batch", "images", "evals/img", "full-size equiv.", "evals to quality",
           "s/img", "img/h", "img/h at quality", "evals/s",
           "GFLOP/eval", "TFLOP/s", "% matmul", "peak MiB", "MiB/img", "final loss per sample (fp32 eval)",
           "structure / style match per sample"]


def _quality_cells(r: dict, classic: bool) -> list[str]:
    """Full-size-equivalent evaluations per image, evaluations to the bar, images per hour at the bar."""
    per_image = r["evaluations"] / r["images"]
    equiv = r.get("weighted_evaluations", per_image)
    if classic:  # the classic row reaches its own bar at its last evaluation, by definition
        return [f"{equiv:.0f}", f"{per_image:.0f}", f"{r['images_per_hour']:.0f}"]
    if "images_per_hour_at_quality" not in r:
        return [f"{equiv:.0f}", "-", "-"]
    if r["quality_evals"] is None:
        return [f"{equiv:.0f}", "not reached", "-"]
    return [f"{equiv:.1f}", f"{r['quality_evals']:.1f}", f"{r['images_per_hour_at_quality']:.0f}"]


def _row_cells(r: dict, classic: bool = False) -> list[str]:
    frac = r.get("matmul_fraction")
    equiv, to_quality, per_hour_quality = _quality_cells(r, classic)
    return [
        r["path"], r["precision"], str(r["batch"]), str(r["images"]),
        f"{r['evaluations'] / r['images']:.0f}", equiv, to_quality,
        f"{r['seconds_per_image']:.3f}", f"{r['images_per_hour']:.0f}", per_hour_quality, f"{r['evals_per_second']:.1f}",
        f"{r['flops_per_eval'] / 1e9:.1f}", f"{r['tflops']:.2f}",
        "-" if frac is None else f"{100 * frac:.1f}",
        f"{r['peak_mib']:.0f}", f"{r['peak_mib_per_image']:.0f}",
        " ".join(f"{v:.4e}" for v in r["losses"]) or "-",
        _look_cell(r),
    ]


def _look_cell(r: dict) -> str:
    """The ruler of `nst look` on each final image (rows measured before it existed: -)."""
    def num(v):
        return "-" if v is None else f"{v:.3f}"
    return " ".join(f"{num(x['structure'])}/{num(x['style_match'])}" for x in r.get("looks") or []) or "-"


def _is_classic(result: dict) -> bool:
    return result["rows"][0]["path"].startswith("classic") if result["rows"] else False


def _ratio_lines(result: dict) -> list[str]:
    lines = []
    base = "classic" if _is_classic(result) else "reference"
    for r in result["rows"][1:]:
        if r.get("time_ratio") is None:
            continue
        loss = ("-" if r.get("loss_ratio_mean") is None else
                f"final loss x{r['loss_ratio_mean']:.4f} (worst sample x{r['loss_ratio_worst']:.4f})")
        lines.append(f"{r['path']} {r['precision']} batch {r['batch']} / {base}: time x{r['time_ratio']:.3f} "
                     f"(speedup {r['speedup']:.2f}x), {loss}")
    return lines


def _rows_with(result: dict, key: str, line) -> list[str]:
    """line(row) for every row after the first that carries `key`."""
    return [line(r) for r in result["rows"][1:] if key in r]


def _at_quality_lines(result: dict) -> list[str]:
    """Evaluations and wall time to the classic run's final loss (the quality bar), per production row."""
    if not _is_classic(result):
        return []
    classic = result["rows"][0]
    n = classic["evaluations"] // classic["images"]

    return _rows_with(result, "images_per_hour_at_quality", lambda r: _outcome(
        r, f"{r['path']} {r['precision']} batch {r['batch']} (stages {_stages(r)}): every sample at or below "
           f"the classic {n}-evaluation loss",
        lambda: f"not reached in {r['weighted_evaluations']:.1f} full-size-equivalent evaluations",
        lambda: f"after {r['quality_evals']:.1f} full-size-equivalent evaluations, "
                f"{r['quality_seconds_per_image']:.2f} s/image: {r['images_per_hour_at_quality']:.0f} "
                f"images/hour at quality, {r['quality_speedup']:.2f}x less wall time than the classic run "
                f"({classic['seconds_per_image']:.2f} s/image)"))


def jittered_row(rows: list[dict]) -> dict | None:
    """The record's classic row from a jittered start (`nst bench --classic-jitter`), if it has one."""
    return next((r for r in rows if r["path"].startswith(JITTERED)), None)


def _band_lines(result: dict) -> list[str]:
    """The same, to the classic's own spread: per sample the larger of the bar and the loss the
    classic run reaches from a jittered start."""
    j = jittered_row(result["rows"])
    if j is None:
        return []
    lines = [f"the bar's own spread: {j['path']} ends at x{j['loss_ratio_mean']:.4f} the bar on average "
             f"(worst sample x{j['loss_ratio_worst']:.4f})"]
    return lines + _rows_with(result, "band_images_per_hour_at_quality", lambda r: (
        f"{r['path']} {r['precision']} batch {r['batch']}: every sample within the classic's spread "
        + (f"not reached in {r['weighted_evaluations']:.1f} full-size-equivalent evaluations"
           if r["band_quality_evals"] is None else
           f"after {r['band_quality_evals']:.1f} full-size-equivalent evaluations, "
           f"{r['band_quality_seconds_per_image']:.2f} s/image: {r['band_images_per_hour_at_quality']:.0f} "
           f"images/hour, {r['band_quality_speedup']:.2f}x less wall time than the classic run")))


def _outcome(r: dict, head: str, missing, reached) -> str:
    """The head, then what `missing()` or `reached()` says, as the row did or did not get to the bar."""
    return f"{head}: {missing()}" if r["quality_evals"] is None else f"{head} {reached()}"


def _stages(r: dict) -> str:
    return " -> ".join(f"{n}@{side}px" for n, side in r.get("stages", []))


def _quality_lines(result: dict) -> list[str]:
    """Older records: time to the strong-Wolfe reference's final loss at equal evaluations."""
    return _rows_with(result, "quality_time_ratio", lambda r: _outcome(
        r, f"{r['path']} {r['precision']} batch {r['batch']}: every sample at or below the reference's final "
           f"loss (fp32 eval, checked at {len(r['curve'])} points)",
        lambda: f"not reached in {r['evaluations'] // r['images']} evaluations",
        lambda: f"after {r['quality_evals']} of {r['evaluations'] // r['images']} evaluations: "
                f"time x{r['quality_time_ratio']:.3f} the reference's (speedup {r['quality_speedup']:.2f}x)"))


def _precision_lines(result: dict) -> list[str]:
    """bf16 against fp32 production at the same batch: the mixed-precision quality check."""
    prod = {(r["precision"], r["batch"]): r for r in result["rows"] if r["path"] == "production"}
    lines = []
    for (prec, batch), r in sorted(prod.items()):
        base = prod.get(("fp32", batch))
        if prec == "fp32" or base is None or not r["losses"] or not base["losses"]:
            continue
        ratios = [a / b for a, b in zip(r["losses"], base["losses"])]
        worst = max(ratios, key=lambda v: abs(v - 1.0))
        lines.append(f"production {prec} / production fp32, batch {batch}: time x{r['seconds'] / base['seconds']:.3f}, "
                     f"final loss x{sum(ratios) / len(ratios):.4f} (worst sample x{worst:.4f})")
    return lines


def _target_lines(result: dict) -> list[str]:
    """The issue's targets, checked against this record (CPU: Lever 1 at 256 px; CUDA: Lever 2 at 512 px)."""
    prod = [r for r in result["rows"][1:] if r["path"] == "production" or r["path"].startswith("production (compile")]
    if not prod:
        return []
    if _is_classic(result):
        return _quality_targets(result, prod)
    if result.get("device_type") != "cuda":
        return []
    fast = max(prod, key=lambda r: r["speedup"])
    eff = max(prod, key=lambda r: r["matmul_fraction"] or 0.0)
    return [
        f"target >= 5x the reference at {result['options']['size']} px: best {fast['speedup']:.2f}x "
        f"({_which(fast)}): {'met' if fast['speedup'] >= 5 else 'NOT met'}",
        f"target >= 40% of the measured bf16 matmul rate: best {100 * eff['matmul_fraction']:.1f}% "
        f"({_which(eff)}): {'met' if eff['matmul_fraction'] >= 0.4 else 'NOT met'}",
    ]


def _quality_targets(result: dict, prod: list[dict]) -> list[str]:
    reached = [r for r in prod if r.get("quality_evals") is not None]
    if not reached:
        return ["target: every sample at the classic loss: NOT reached"]
    best = min(reached, key=lambda r: r["quality_evals"])
    fast = max(reached, key=lambda r: r["quality_speedup"])
    lines = [f"target <= 150 full-size-equivalent evaluations to the classic loss: best {best['quality_evals']:.1f} "
             f"({_which(best)}): {'met' if best['quality_evals'] <= 150 else 'NOT met'}",
             f"target >= 4x less wall time than the classic run to its loss: best {fast['quality_speedup']:.2f}x "
             f"({_which(fast)}): {'met' if fast['quality_speedup'] >= 4 else 'NOT met'}"]
    if result.get("device_type") == "cuda":
        eff = max(prod, key=lambda r: r["matmul_fraction"] or 0.0)
        lines += [f"target >= 40% of the measured bf16 matmul rate: best {100 * eff['matmul_fraction']:.1f}% "
                  f"({_which(eff)}): {'met' if eff['matmul_fraction'] >= 0.4 else 'NOT met'}",
                  f"target >= 10,000 images per hour at quality: best {fast['images_per_hour_at_quality']:.0f} "
                  f"({_which(fast)}): {'met' if fast['images_per_hour_at_quality'] >= 10000 else 'NOT met'}"]
    return lines


def _which(r: dict) -> str:
    extra = r["path"][len("production"):].strip(" ()")
    return f"{r['precision']}, batch {r['batch']}" + (f", {extra}" if extra else "")


def _compile_lines(result: dict) -> list[str]:
    return [f"{r['path']}: one-off compilation and warm-up {r['compile_seconds']:.1f} s (not in the timing)"
            for r in result["rows"] if r.get("compile_seconds") is not None]


def _workload(result: dict) -> str:
    o = result["options"]
    if not _is_classic(result):
        return (f"workload: {o['size']}x{o['size']} px, {o['iterations']} evaluations per image, "
                f"L-BFGS history: production {o['history']}, reference {o.get('reference_history', o['history'])}, "
                f"{o.get('pooling', 'max')} pooling, weights: {result['weights']}")
    c = result.get("config", {})
    sets = f" {' '.join('--set ' + v for v in o.get('sets', []))}" if o.get("sets") else ""
    return (f"workload: {o['size']}x{o['size']} px, preset {o['preset']}{sets} ({c.get('loss_reduction')} loss, "
            f"{c.get('init')} start, {c.get('pooling')} pooling, L-BFGS history {c.get('lbfgs_history')}, "
            f"step cap {c.get('lbfgs_max_step')}), classic: {o['classic_evaluations']} evaluations, weights: "
            f"{result['weights']}")


def _header(result: dict) -> list[str]:
    return [
        f"device: {result['device']}; torch {result['torch']}; {result['date']}",
        _workload(result),
        f"measured bf16 matmul rate: {result['matmul_bf16_tflops']:.2f} TFLOP/s "
        f"(FLOP/eval = 2 x (forward MACs + input-gradient MACs), 3x3 convolutions only)",
    ] + ([f"host load average (1 min) at start / end: {' / '.join(str(v) for v in result['load_average'])} "
          f"on {result.get('host_cpus')} CPUs (other processes shared the machine where it exceeds the CPUs)"]
         if result.get("load_average") else [])


def text_table(result: dict) -> str:
    """The table `nst bench` prints; it ends with the ratios production/reference."""
    classic = _is_classic(result)
    cells = [COLUMNS] + [_row_cells(r, classic and i == 0) for i, r in enumerate(result["rows"])]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = _header(result) + [""]
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    if result.get("memory"):
        lines.append("")
        lines.append("peak memory, production, one image: " + "; ".join(
            f"{m['size']}px: " + (f"{m['peak_mib']:.0f} MiB" if m["peak_mib"] is not None else "-")
            + ("" if m["status"] == "ok" else f" ({m['status']})") for m in result["memory"]))
    for err in result.get("errors", []):
        lines.append(f"not measured: {err}")
    lines.append("")
    lines.extend(_compile_lines(result))
    for p in _profiles(result):
        lines += ["", _profile_title(p), p["table"]]
    lines.extend("ratio " + line for line in _ratio_lines(result) + _precision_lines(result))
    lines.extend("ratio time-to-quality " + line for line in _quality_lines(result))
    lines.extend("quality " + line for line in _at_quality_lines(result) + _band_lines(result))
    lines.extend(_target_lines(result))
    return "\n".join(lines)


def _profiles(result: dict) -> list[dict]:
    return list(result.get("profiles") or []) + ([result["profile"]] if result.get("profile") else [])


def _profile_title(p: dict) -> str:
    share = (f"; convolutions {100 * p['conv_share']:.1f}% of the profiled time "
             f"({p['conv_us'] / 1e3:.1f} of {p['total_us'] / 1e3:.1f} ms)" if p.get("conv_share") is not None else "")
    size = f", {p['size']} px" if p.get("size") else ""
    return (f"profile: {p['evaluations']} production evaluation(s){size}, {p['precision']}, batch {p['batch']}, "
            f"sorted by {p['sorted_by']}{share}")


def markdown_section(result: dict, name: str) -> str:
    o = result["options"]
    out = [f"## {name}: {result['device']}", ""]
    out += [f"- {line}" for line in _header(result)]
    out.append(f"- command: `{o.get('command') or 'nst bench'}`")
    out.append("")
    out.append("| " + " | ".join(COLUMNS) + " |")
    out.append("|" + "---|" * len(COLUMNS))
    classic = _is_classic(result)
    for i, r in enumerate(result["rows"]):
        out.append("| " + " | ".join(_row_cells(r, classic and i == 0)) + " |")
    out.append("")
    for line in (_ratio_lines(result) + _precision_lines(result) + _compile_lines(result)
                 + [f"time-to-quality {q}" for q in _quality_lines(result)]
                 + [f"quality: {q}" for q in _at_quality_lines(result) + _band_lines(result)]
                 + _target_lines(result)):
        out.append(f"- {line}")
    if result.get("memory"):
        out.append("")
        out.append("Peak memory of the production path for one image (3 evaluations, history allocated):")
        out.append("")
        out.append("| size | peak MiB | note |")
        out.append("|---|---|---|")
        for m in result["memory"]:
            peak = "-" if m["peak_mib"] is None else f"{m['peak_mib']:.0f}"
            out.append(f"| {m['size']} px | {peak} | {m['status']} |")
    for err in result.get("errors", []):
        out.append(f"- not measured: {err}")
    for p in _profiles(result):
        out += ["", f"<details><summary>{_profile_title(p).capitalize()}</summary>", "", "```",
                p["table"].rstrip(), "```", "", "</details>"]
    out.append("")
    return "\n".join(out)


def save_result(result: dict, path: str | Path) -> None:
    atomic_write_text(Path(path), json.dumps(result, indent=2) + "\n")


def render_benchmarks(results_dir: str | Path = RESULTS_DIR, out: str | Path = "BENCHMARKS.md") -> str:
    """BENCHMARKS.md from every JSON record in results_dir (one section each)."""
    files = sorted(Path(results_dir).glob("*.json"))
    parts = [
        "# Benchmarks",
        "",
        "Generated by `nst bench` (pipeline/bench/) from the measured records in benchmarks/results/;",
        "do not edit by hand. Since issue 11 a record's first row is the *classic* run",
        "(torch.optim.LBFGS lr=1, history 100, no line search, tolerances off; one image at a time,",
        "fp32, on the preset's loss and start): its final loss per sample is the quality bar, and",
        "each production row (the preset's stages, batched, bf16 where native, per-sample L-BFGS)",
        "reports its full-size-equivalent evaluations and images per hour to that bar. `make bench`",
        "writes `cpu.json` (256 px); benchmarks/gpu.sh writes GPU records on a lent machine. Records",
        "made before it (the H100 ones, `cpu-avg-compile`, and `cpu` until `make bench` re-measures",
        "it) start with the strong-Wolfe \"reference\"",
        "row (the whole VGG16) and compare at equal evaluations. Final losses are re-evaluated in",
        "fp32 for every path. Sections are in file-name order; each says its date and command.",
        "",
    ]
    for f in files:
        parts.append(markdown_section(json.loads(f.read_text()), f.stem))
    scale_dir = Path(results_dir) / "scale"
    if any(scale_dir.glob("*.json")):
        from pipeline.bench import scale_report

        parts.append(scale_report.markdown(scale_report.load(scale_dir)))
    look_dir = Path(results_dir) / "look"
    if any(look_dir.glob("*.json")):
        from pipeline.bench import look_report

        parts.append(look_report.markdown(look_report.load(look_dir)))
    video_dir = Path(results_dir) / "video"
    if any(video_dir.glob("*.json")):
        from pipeline.bench import video_report

        parts.append(video_report.markdown(video_report.load(video_dir)))
    text = "\n".join(parts)
    atomic_write_text(Path(out), text)
    return text


if __name__ == "__main__":
    render_benchmarks()
