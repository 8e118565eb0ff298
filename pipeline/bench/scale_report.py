"""The scale bench's table, for the terminal and for BENCHMARKS.md, from its JSON records only."""

from __future__ import annotations

import json
from pathlib import Path

COLUMNS = ["case", "shard order", "plan s", "plan CPU s", "plan peak MB", "run dir MB", "worker peak MB", "threads", "samples/s",
           "status s", "status CPU s"]


def _cell(d: dict | None, key: str, fmt: str = "{:.1f}") -> str:
    if not d:
        return "-"
    if d.get("rc", 0) != 0:
        return f"failed: {d.get('error', 'exit ' + str(d['rc']))}"[:80]
    v = d.get(key)
    return "-" if v is None else fmt.format(v)


def rows(record: dict) -> list[list[str]]:
    out = []
    for r in record["rows"]:
        plan, worker, status = r.get("plan"), r.get("worker"), r.get("status")
        out.append([f"{r['case']}{' (before)' if record.get('before') else ''}", r["shard_order"],
                    _cell(plan, "seconds"), _cell(plan, "cpu_seconds"), _cell(plan, "peak_rss_mb", "{:.0f}"),
                    "-" if plan and plan.get("rc") else f"{r.get('run_dir_mb', 0):.0f}",
                    _cell(worker, "worker_peak_rss_mb", "{:.0f}"), _cell(worker, "threads", "{:d}"),
                    _cell(worker, "samples_per_s"),
                    _cell(status, "seconds", "{:.2f}"), _cell(status, "cpu_seconds", "{:.2f}")])
    return out


def header(record: dict) -> str:
    m = record["machine"]
    return (f"{record['date']}; {m['cpu']}, {m['cpus']} CPUs; load average (1 min) {m['load_start']} at start, "
            f"{m.get('load_end', '?')} at end (above {m['cpus']}: other processes shared the machine); "
            f"`{record['command']}`{' — the code before the per-shard plan' if record.get('before') else ''}")


def markdown(records: list[dict]) -> str:
    lines = ["## scale: planning, workers and status at 100k-10M samples", "",
             "Measured by `make bench-scale` (benchmarks/scale.py): each step is a separate process, "
             "its peak RSS and CPU time (user + system) from the kernel (wait4 / getrusage); on a shared "
             "machine CPU time says more than wall time. plan = `nst stylize --plan-only`; worker = "
             "one `nst stylize` worker finishing its first shards of 1000 samples (samples/s: the median over "
             "its first 3 (records before 2026-12-03) or 5 shards whose samples all succeeded) with the torch threads a "
             "worker takes by default (threads; records without it ran one) (samples/s at 16 px and 1 "
             "evaluation: the pipeline's own overhead, setup excluded); status = `nst status`. Targets (issue "
             "14): 1M plan <= 30 s and <= 1024 MB, status <= 1 s, worker RSS at 1M within 10% of 1k, "
             "10M-row plan <= 300 s and <= 2048 MB, >= 100 samples/s per worker; (issue 28) the 1M plan in the "
             "default order (`size`, which reads image headers) <= 1.5x the CPU time of the `input` order, "
             "<= 1024 MB, and the `input` order <= 30 s of CPU.", ""]
    for rec in records:
        lines.append(f"- {header(rec)}")
        lines += [f"  - {note}" for note in ([rec["code"]] if rec.get("code") else []) + rec.get("notes", [])]
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for rec in records:
        lines += ["| " + " | ".join(c) + " |" for c in rows(rec)]
    lines.append("")
    lines += [f"- {t}" for t in target_lines(records)]
    lines.append("")
    return "\n".join(lines)


def _newest(records: list[dict]) -> list[dict]:
    return sorted((r for r in records if not r.get("before")), key=lambda r: r["date"], reverse=True)


def _find(records: list[dict], scale: int, prefix: str, order: str | None = None, step: str = "plan") -> dict | None:
    """The newest row of that scale and case (and shard order) that measured `step`."""
    for rec in _newest(records):
        for r in rec["rows"]:
            if r["case"].startswith(prefix) and (scale == 0 or rec["scale"] == scale) and \
                    (order is None or r["shard_order"] == order) and r.get(step):
                return r
    return None


def _both_orders(records: list[dict]) -> tuple[dict | None, dict | None]:
    """The 1M list's `input` and `size` rows from the newest record that planned both (one run:
    their CPU times are compared)."""
    for rec in _newest(records):
        rows = {r["shard_order"]: r for r in rec["rows"] if r["case"].startswith("1,000,000 rows")}
        if rec["scale"] == 1_000_000 and "input" in rows and "size" in rows:
            return rows["input"], rows["size"]
    return None, None


def target_lines(records: list[dict]) -> list[str]:
    """Each scale target (docs/scale.md) next to the figure measured for it (or 'not measured'),
    taken from the newest record that measured it."""
    def val(r, step, key):
        d = (r or {}).get(step) or {}
        return None if d.get("rc", 0) or d.get(key) is None else d[key]

    def line(name, v, limit, unit, fmt="{:.1f}", lower_is_better=True, cpu=None):
        if v is None:
            return f"{name}: not measured"
        ok = v <= limit if lower_is_better else v >= limit
        also = "" if cpu is None else f"; CPU time {cpu:.2f} s: {'within' if cpu <= limit else 'over'} it"
        return f"{name}: {fmt.format(v)} {unit} (target {'<=' if lower_is_better else '>='} {limit:g}: " \
               f"{'met' if ok else 'NOT met'}{also})"

    m1 = _find(records, 1_000_000, "1,000,000", "input")
    i1, d1 = _both_orders(records)  # the default order beside the input order, same list (issue 28)
    c1, cd = val(i1, "plan", "cpu_seconds"), val(d1, "plan", "cpu_seconds")
    k1 = _find(records, 1000, "1,000 ", step="worker")
    m10 = _find(records, 0, "10,000,000")
    w1 = val(_find(records, 1_000_000, "1,000,000", "input", "worker"), "worker", "worker_peak_rss_mb")
    w0 = val(k1, "worker", "worker_peak_rss_mb")
    s1 = _find(records, 1_000_000, "1,000,000", "input", "status")
    rates = [val(r, "worker", "samples_per_s") for rec in records if not rec.get("before") for r in rec["rows"]]
    rates = [v for v in rates if v is not None]
    return [
        line("1M plan time (`input` order)", val(m1, "plan", "seconds"), 30, "s", cpu=val(m1, "plan", "cpu_seconds")),
        line("1M plan peak RSS (`input` order)", val(m1, "plan", "peak_rss_mb"), 1024, "MB", "{:.0f}"),
        line("1M default-order (size) plan CPU time over the input order's", None if not (c1 and cd) else cd / c1,
             1.5, "x", "{:.2f}"),
        line("1M default-order (size) plan peak RSS", val(d1, "plan", "peak_rss_mb"), 1024, "MB", "{:.0f}"),
        line("1M `nst status`", val(s1, "status", "seconds"), 1, "s", "{:.2f}", cpu=val(s1, "status", "cpu_seconds")),
        line("worker peak RSS, 1M over 1k", None if not (w1 and w0) else 100 * (w1 / w0 - 1), 10, "%", "{:+.1f}"),
        line("10M-row plan time", val(m10, "plan", "seconds"), 300, "s", cpu=val(m10, "plan", "cpu_seconds")),
        line("10M-row plan peak RSS", val(m10, "plan", "peak_rss_mb"), 2048, "MB", "{:.0f}"),
        line("slowest worker (samples/s, 16 px, 1 evaluation)", min(rates) if rates else None, 100, "samples/s",
             lower_is_better=False),
    ]


def load(results_dir: Path) -> list[dict]:
    """Records in scale order, the 'before' records first within a scale."""
    recs = [json.loads(p.read_text()) for p in sorted(Path(results_dir).glob("*.json"))]
    return sorted(recs, key=lambda r: (r["scale"], not r.get("before")))


def text(record: dict) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows(record))) for i, c in enumerate(COLUMNS)]
    out = [header(record), "  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths))]
    out += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows(record)]
    return "\n".join(out)
