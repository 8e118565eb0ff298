"""Where an input's bytes are: a file path, or a member of a tar addressed by offset.

A tar member's location is written `SHARD.tar#OFFSET+LENGTH` so that it travels through the
plan and every task as one string, and is read with one pread. A leaf module: images, inputs
and tar_input all use it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MEMBER_REF = re.compile(r"^(?P<tar>.+\.tar)#(?P<offset>\d+)\+(?P<length>\d+)$")


def member_ref(tar: str, offset: int, length: int) -> str:
    return f"{tar}#{offset}+{length}"


def parse_member_ref(path: str) -> tuple[str, int, int] | None:
    """(tar, offset, length) if `path` names a tar member, else None."""
    m = MEMBER_REF.match(str(path))
    return (m["tar"], int(m["offset"]), int(m["length"])) if m else None


def read_range(path: str | Path, offset: int, length: int) -> bytes:
    """Exactly `length` bytes at `offset` (a short read means the tar was truncated)."""
    with open(path, "rb") as f:
        data = os.pread(f.fileno(), length, offset)
    if len(data) != length:
        raise OSError(f"{path}: member at {offset} truncated ({len(data)} of {length} bytes)")
    return data
