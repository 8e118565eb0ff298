"""The look records (benchmarks/results/look/*.json, written by `nst bench --look`): the printed
table and their BENCHMARKS.md section, with the consistency band over sizes, the peer
comparison and the evaluations-to-look figure, all computed from the stored rows."""

from __future__ import annotations

import json
from pathlib import Path

BAND = 0.08      # issue 23: every size within this of the pair's mean over the sizes
SETTLED = 0.01   # the look has settled: both numbers within this of the largest budget's


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def table_rows(record: dict) -> list[list[str]]:
    rows = [[f"nst {record['preset']}", str(r["size"]), f"{r['content']}+{r['style']}", _f(r["structure"]),
             _f(r["style_match"]), f"{r['seconds']:.0f}", f"{r['cpu_seconds']:.0f}", str(r["evaluations"])]
            for r in record["rows"]]
    rows += [[p["tool"], str(p["size"]), f"{p['content']}+{p['style']}", _f(p["structure"]), _f(p["style_match"]),
              f"{p['seconds']:.0f}", "-" if p.get("cpu_seconds") is None else f"{p['cpu_seconds']:.0f}", "500"]
             for p in record.get("peers", [])]
    return rows


COLUMNS = ["tool", "size", "pair", "structure", "style match", "seconds", "CPU s", "evaluations"]


def band_lines(record: dict) -> list[str]:
    """Per pair: the spread of each number over the sizes, against the ±0.08 band."""
    lines = []
    by_pair: dict = {}
    for r in record["rows"]:
        by_pair.setdefault((r["content"], r["style"]), []).append(r)
    for (c, s), rows in by_pair.items():
        if len(rows) < 2:
            continue
        parts = []
        for key, name in (("structure", "structure"), ("style_match", "style match")):
            vals = [r[key] for r in rows]
            mean = sum(vals) / len(vals)
            dev = max(abs(v - mean) for v in vals)
            parts.append(f"{name} mean {mean:.3f}, largest deviation {dev:.3f} "
                         f"({'within' if dev <= BAND else 'outside'} ±{BAND})")
        sizes = ", ".join(str(r["size"]) for r in rows)
        lines.append(f"{c}+{s} over {sizes} px: " + "; ".join(parts))
    return lines


def peer_lines(record: dict, ours: list[dict] | None = None) -> list[str]:
    """Each peer row against our row of the same pair and size (in this record, or in `ours`:
    the rows of every look record, for a record that holds only peer rows)."""
    lines = []
    pool = record["rows"] + (ours or [])
    for p in record.get("peers", []):
        ours = [r for r in pool if (r["content"], r["style"], r["size"]) == (p["content"], p["style"], p["size"])]
        if not ours:
            continue
        o = ours[0]
        ok = o["structure"] >= p["structure"] and o["style_match"] >= p["style_match"]
        lines.append(f"{p['content']}+{p['style']} at {p['size']} px: nst {_f(o['structure'])}/{_f(o['style_match'])} "
                     f"against {p['tool']} {_f(p['structure'])}/{_f(p['style_match'])}: "
                     f"{'at least as good on both' if ok else 'not better on both'}; CPU seconds {o['cpu_seconds']:.0f} "
                     f"against {'-' if p.get('cpu_seconds') is None else format(p['cpu_seconds'], '.0f')}")
    return lines


def budget_lines(record: dict) -> list[str]:
    """The evaluations-to-look: the smallest budget within SETTLED of the largest budget's look."""
    lines = []
    by_size: dict = {}
    for r in record.get("budgets", []):
        by_size.setdefault(r["size"], []).append(r)
    for size, rows in sorted(by_size.items()):
        rows = sorted(rows, key=lambda r: r["evaluations"])
        last = rows[-1]
        settled = next((r for r in rows if abs(r["structure"] - last["structure"]) <= SETTLED
                        and abs(r["style_match"] - last["style_match"]) <= SETTLED), last)
        trail = "; ".join(f"{r['evaluations']}: {_f(r['structure'])}/{_f(r['style_match'])} ({r['cpu_seconds']:.0f} CPU s)"
                          for r in rows)
        verdict = (f"{settled['evaluations']} (both numbers within {SETTLED} of the {last['evaluations']}-evaluation "
                   f"look)" if settled is not last else
                   f"not settled before {last['evaluations']} (no smaller budget within {SETTLED} of its look on both numbers)")
        lines.append(f"evaluations to the look at {size} px ({rows[0]['content']}+{rows[0]['style']}): {verdict}; "
                     f"structure/style match by budget: {trail}")
    return lines


def text_table(record: dict) -> str:
    cells = [COLUMNS] + table_rows(record)
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines + [""] + band_lines(record) + peer_lines(record) + budget_lines(record))


def markdown(records: list[tuple[str, dict]]) -> str:
    everyone = [r for _, rec in records for r in rec["rows"]]
    out = ["## The look (`nst bench --look`)", "",
           "Structure (SSIM of luminance with the content) and style match (EfficientNet-Lite0 Gram statistics, "
           "1 - D(out, style)/D(content, style)), both at a 256 px viewing size (`nst look`). Seconds are wall "
           "time on a shared machine; CPU s is the process's CPU time, the figure to compare.", ""]
    for name, rec in records:
        out += [f"### look/{name}: {rec['date']}, {rec['threads']} thread(s), load average "
                f"{' -> '.join(map(str, rec.get('load_average', [])))}", "",
                f"- command: `{rec.get('command')}`"] + ([f"- note: {rec['note']}"] if rec.get("note") else []) + [""]
        rows = table_rows(rec)
        if rows:  # a budgets-only record has its lines below and no table
            out += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
            out += ["| " + " | ".join(r) + " |" for r in rows] + [""]
        out += [f"- {line}" for line in band_lines(rec) + peer_lines(rec, everyone) + budget_lines(rec)]
        out.append("")
    return "\n".join(out)


def load(directory: Path) -> list[tuple[str, dict]]:
    """The current records, then those of earlier defaults kept for comparison (former/)."""
    directory = Path(directory)
    files = sorted(directory.glob("*.json")) + sorted(directory.glob("former/*.json"))
    return [(str(f.relative_to(directory).with_suffix("")), json.loads(f.read_text())) for f in files]
