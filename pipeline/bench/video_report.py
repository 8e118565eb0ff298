"""The video bench's table (warping error, look, seconds per frame), for the terminal and BENCHMARKS.md,
from its JSON records only (benchmarks/results/video/)."""

from __future__ import annotations

import json
from pathlib import Path

COLUMNS = ["run", "warping error", "x per-frame", "structure", "style match", "content term", "style term",
           "evals first / later", "s first frame", "s later frame", "CPU s / frame"]


def rows(record: dict) -> list[list[str]]:
    per = record["rows"][0]
    out = []
    for r in record["rows"]:
        ruler = r.get("ruler") or {}
        out.append([r["run"], f"{r['warping_error']:.5f}", f"{r['warping_error'] / per['warping_error']:.3f}",
                    _num(ruler.get("structure")), _num(ruler.get("style_match")), f"{r['content']:.4g}", f"{r['style']:.4g}",
                    f"{r['evaluations_first']} / {r['evaluations_later']:.0f}", f"{r['seconds_first']:.1f}",
                    f"{r['seconds_later']:.1f}", f"{r['cpu_seconds'] / r['frames']:.1f}"])
    return out


def _num(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def summary_lines(record: dict) -> list[str]:
    look = record["look"]
    verdict = "met" if record["met"] else "NOT met"
    delta = record.get("ruler_delta")
    ruler = [] if not delta else [
        f"look ruler (EfficientNet-Lite0, mean over frames), temporal minus per-frame: structure "
        f"{delta['structure']:+.3f}, style match {delta['style_match']:+.3f} (target: within 0.05: "
        f"{'met' if max(abs(v) for v in delta.values()) <= 0.05 else 'NOT met'})"]
    return ruler + [f"warping error, temporal / per-frame: {record['ratio']:.3f} (target <= {record['target_ratio']:.3f}: "
            f"{verdict})",
            f"look, temporal against per-frame: content term {look['content']:+.1%}, style term {look['style']:+.1%} "
            f"(mean over frames; the temporal run's frames also pay the temporal term)"]


def header(record: dict) -> list[str]:
    m = record["machine"]
    return [f"- {record['date']}; {m['cpu']}, {m['cpus']} CPUs, {record['threads']} thread(s); torch {m['torch']}; "
            f"load average (1 min) {m['load_start']} at start, {m.get('load_end', '?')} at end (above {m['cpus']}: "
            f"other processes shared the machine; wall seconds are noisy, CPU seconds less so)",
            f"- clip: `{record['clip']}`: {record['provenance']}; style `{record['style']}`, {record['size']} px, "
            f"{record['rows'][0]['frames']} frames; first frame {record['iterations']} evaluations, later frames "
            f"{record['later_iterations']} (both runs); the flow's reliable share "
            f"{record['rows'][1]['reliable']:.3f}",
            f"- command: `{record['command']}`"]


def text(record: dict) -> str:
    table = [COLUMNS] + rows(record)
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in table]
    return "\n".join(header(record) + [""] + lines + [""] + summary_lines(record))


def markdown(records: list[tuple[str, dict]]) -> str:
    out = ["## Video: temporal consistency (`nst video`) against per-frame stylization", "",
           "The warping error (Lai et al. 2018) is the mean over frames 1.. of the masked MSE between output",
           "frame t and output frame t-1 warped by the *input's* optical flow (DIS), the mask from the input's",
           "forward-backward consistency check; frames in [0, 1], squared error summed over RGB. Both runs use",
           "the same `nst video` Task, preset, seeds and evaluations; per-frame sets",
           "`temporal_weight=0 warp_start=false` (every frame from the preset's start).", ""]
    for name, record in records:
        out += [f"### {name}", ""] + header(record) + [""]
        out += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        out += ["| " + " | ".join(r) + " |" for r in rows(record)]
        out += [""] + [f"- {line}" for line in summary_lines(record)] + [""]
    return "\n".join(out)


def load(folder: Path) -> list[tuple[str, dict]]:
    return [(p.stem, json.loads(p.read_text())) for p in sorted(Path(folder).glob("*.json"))]
