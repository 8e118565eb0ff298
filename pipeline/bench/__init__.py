"""`nst bench`: the fixed workload run by the plain reference path and the production path.

The figures in BENCHMARKS.md come only from here: `run.py` measures, `report.py`
formats the table and renders BENCHMARKS.md from the stored JSON results.
"""
