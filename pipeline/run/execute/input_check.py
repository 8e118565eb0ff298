"""The worker's side of input hashing: the content hash of each input, and whether it changed.

Planning records only size + mtime (reading every file in full before the first image is
processed does not scale); the worker, which reads the input anyway, hashes it and the
manifest row records the hash. An input whose size, mtime (or, with --hash-inputs, sha256)
differs from the plan's makes that sample a failed_io row instead of a silently different
result; a rerun reports the change before any work (pipeline/run/folder/plan.py).
"""

from __future__ import annotations

import hashlib
import os

from pipeline.run.task import FAILED_IO, Sample, SampleResult


def describe(sample: Sample) -> dict | None:
    """{size, mtime_ns, sha256} of the sample's input as it is now (None: no input, or unreadable)."""
    if sample.source is None:
        return None
    from pipeline.io.images import read_input
    from pipeline.io.locations import parse_member_ref

    ref = parse_member_ref(sample.source)
    try:
        st = os.stat(ref[0] if ref else sample.source)
        data = read_input(sample.source)
    except OSError:
        return None
    return {"size": ref[2] if ref else st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256": hashlib.sha256(data).hexdigest()}


def changed(sample: Sample, now: dict | None) -> str | None:
    """Why the input differs from the plan's description, or None."""
    planned = sample.planned
    if not planned or now is None or planned.get("size") is None:
        return None
    if planned.get("sha256"):
        if planned["sha256"] != now["sha256"]:
            return f"sha256 {planned['sha256'][:12]} -> {now['sha256'][:12]}"
        return None
    for k in ("size", "mtime_ns"):
        if planned.get(k) != now[k]:
            return f"{k} {planned.get(k)} -> {now[k]}"
    return None


def checked(sample: Sample, result: SampleResult) -> tuple[SampleResult, str | None]:
    """(result, the input's sha256): a failed_io result if the input changed since planning."""
    now = describe(sample)
    why = changed(sample, now)
    if why is not None:
        return SampleResult(sample.key, FAILED_IO, {}, {},
                            f"InputChanged: {sample.published_source} changed since the run was planned "
                            f"({why}); re-plan with --overwrite"), now["sha256"]
    return result, (now or {}).get("sha256")
