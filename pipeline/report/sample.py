"""A seeded, stable sample of N ok rows for the contact sheet.

Each ok row is ranked by sha256(seed, key) and the N lowest are taken: the same
seed gives the same sample on every re-run, whatever order manifests are read in,
and on a live run a sampled row stays sampled until N rows rank lower than it.
"""

from __future__ import annotations

import hashlib
import heapq

from pipeline.run.task import OK


def rank(seed: int, key: str) -> bytes:
    return hashlib.sha256(f"{seed}:{key}".encode()).digest()


def sample_rows(rows: list[dict], n: int, seed: int) -> list[dict]:
    """N ok rows chosen by seed, returned in key order."""
    ok = (r for r in rows if r["status"] == OK)
    chosen = heapq.nsmallest(max(n, 0), ok, key=lambda r: rank(seed, r["key"]))
    return sorted(chosen, key=lambda r: r["key"])
