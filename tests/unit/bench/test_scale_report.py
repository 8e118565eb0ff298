"""BENCHMARKS.md's scale targets: each from the newest record that measured it, and the default
order's CPU ratio from one record that planned both orders (issue 28)."""

from __future__ import annotations

from pipeline.bench import scale_report

CASE = "1,000,000 rows (CSV cycling over the square files among 100,000)"


def _row(order, plan_cpu, worker_rss=None):
    row = {"case": CASE, "shard_order": order, "plan": {"rc": 0, "seconds": plan_cpu + 1, "cpu_seconds": plan_cpu,
                                                        "peak_rss_mb": 150.0},
           "status": {"rc": 0, "seconds": 0.5, "cpu_seconds": 0.4}}
    if worker_rss:
        row["worker"] = {"rc": 0, "worker_peak_rss_mb": worker_rss, "samples_per_s": 120.0}
    return row


def _record(date, rows, scale=1_000_000):
    return {"kind": "nst-bench-scale", "scale": scale, "date": date, "rows": rows,
            "machine": {"cpu": "x", "cpus": 2, "python": "3.11", "load_start": 1.0}, "command": "c"}


def test_ratio_from_one_record_worker_from_the_newest_that_ran_one():
    full = _record("2026-12-03 18:42 UTC", [_row("input", 29.0, worker_rss=500.0)])
    orders = _record("2026-12-07 14:00 UTC", [_row("input", 20.0), _row("size", 26.0)])
    small = _record("2026-12-03 18:39 UTC", [{**_row("input", 0.7, worker_rss=490.0), "case": "1,000 rows"}], 1000)
    lines = scale_report.target_lines([small, full, orders])
    assert "1M plan time (`input` order): 21.0 s (target <= 30: met; CPU time 20.00 s: within it)" in lines
    assert "1M default-order (size) plan CPU time over the input order's: 1.30 x (target <= 1.5: met)" in lines
    assert "worker peak RSS, 1M over 1k: +2.0 % (target <= 10: met)" in lines  # 500 / 490 from the older record
    slow = _record("2026-12-08 09:00 UTC", [_row("input", 20.0), _row("size", 31.0)])
    assert "1M default-order (size) plan CPU time over the input order's: 1.55 x (target <= 1.5: NOT met)" in \
        scale_report.target_lines([small, full, orders, slow])
    only_size = _record("2026-12-09 09:00 UTC", [_row("size", 10.0)])  # no input row beside it: not compared
    assert "1.55 x" in " ".join(scale_report.target_lines([small, full, orders, slow, only_size]))
