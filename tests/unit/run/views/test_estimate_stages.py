"""The cost estimate counts each stage of a multi-resolution schedule at its own size, on both
sides of the rate: the run's finished rows and a benchmark record's production row."""

import json

from pipeline.run.views.estimate import benchmark_rate, measured_rate, schedule

STAGES = schedule({"coarse_stages": [[0.25, 0.3], [0.5, 0.2]]})  # the default preset's former schedule


def _row(size, seconds):
    return {"status": "ok", "worker": {"device": "cpu"}, "size": [size, size], "iterations": 500, "seconds": seconds}


def test_measured_rate_counts_coarse_stages_at_their_pixels():
    rows = [_row(512, 284.0)]
    plain, _ = measured_rate(rows, "cpu")
    staged, n = measured_rate(rows, "cpu", STAGES)
    assert n == 1
    # 150 evaluations at 128 px + 100 at 256 px + 250 at 512 px = 284.375 full-size ones
    assert abs(staged - 284.0 / (512 * 512 * 284.375 / 1e6)) < 1e-9
    assert abs(staged / plain - 500 / 284.375) < 1e-9
    tiny = measured_rate([_row(40, 1.0)], "cpu", STAGES)[0]  # stages under 32 px are skipped: all at full size
    assert abs(tiny - 1.0 / (40 * 40 * 500 / 1e6)) < 1e-9


def test_measured_rate_counts_absolute_stages_at_their_pixels():
    stages = schedule({"stage_base": 128, "stage_base_share": 0.4})
    rate, _ = measured_rate([_row(256, 100.0)], "cpu", stages)
    # 200 evaluations at 128 px + 150 at 181 px + 150 at 256 px
    assert abs(rate - 100.0 / ((200 * 128 * 128 + 150 * 181 * 181 + 150 * 256 * 256) / 1e6)) < 1e-9


def test_benchmark_rate_uses_the_rows_full_size_equivalent_evaluations(tmp_path):
    record = {"device_type": "cpu", "date": "2026-01-01", "device": "test cpu",
              "options": {"size": 128, "iterations": 1000},
              "rows": [{"path": "production", "precision": "bf16", "batch": 2, "seconds_per_image": 100.0,
                        "weighted_evaluations": 250.0}]}
    (tmp_path / "cpu.json").write_text(json.dumps(record))
    rate, desc = benchmark_rate({"precision": "auto"}, "cpu", tmp_path)
    assert abs(rate - 100.0 / (128 * 128 * 250.0 / 1e6)) < 1e-9 and "cpu.json" in desc
    del record["rows"][0]["weighted_evaluations"]  # a record without stages: every evaluation at full size
    (tmp_path / "cpu.json").write_text(json.dumps(record))
    assert abs(benchmark_rate({"precision": "auto"}, "cpu", tmp_path)[0] - 100.0 / (128 * 128 * 1000 / 1e6)) < 1e-9
