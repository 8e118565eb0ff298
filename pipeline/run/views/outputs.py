"""A run's samples read back for use: (image, metadata) in key order.

Only committed shards are read (a shard still being written is not yet part of
the dataset), through each shard's manifest: one row per sample, the row's
status says whether the tar holds it. Members are read at their tar offsets, so
a sample costs one seek, whatever the shard's size.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Iterator

from PIL import Image

from pipeline.io.shards import tar_members
from pipeline.run.folder.plan import load_run
from pipeline.run.views.shard_state import committed_rows

IMAGE_EXTS = ("png", "jpg", "webp")


def main_image(key: str, names: list[str]) -> str | None:
    """The member a sample is shown by: KEY.png (stylize, texture, dream), else the comparison
    sheet (invert), else its first image member."""
    images = [n for n in names if n.rsplit(".", 1)[-1] in IMAGE_EXTS]
    for name in images:
        if name.count(".") == 1:
            return name
    sheets = [n for n in images if n.startswith(f"{key}.sheet.")]
    return (sheets or images or [None])[0]


def iter_samples(out: str | Path, include_failed: bool = False) -> Iterator[tuple[Image.Image | None, dict]]:
    """(image, metadata) per sample in key order. metadata is the sample's json member (what it
    recorded); a failed sample, with include_failed, comes as (None, its manifest row)."""
    plan = load_run(Path(out))
    entries = []
    for _shard, paths, _record, rows in committed_rows(plan):
        entries.extend((row["key"], paths.tar, row) for row in rows)
    entries.sort(key=lambda e: e[0])
    handles: dict[Path, tuple] = {}
    try:
        for key, tar, row in entries:
            if row["status"] != "ok":
                if include_failed:
                    yield None, row
                continue
            if tar not in handles:
                index: dict[str, dict[str, tuple[int, int]]] = {}
                for name, offset, size in tar_members(tar):
                    index.setdefault(name.split(".", 1)[0], {})[name] = (offset, size)
                handles[tar] = (open(tar, "rb"), index)
            f, index = handles[tar]
            members = index.get(key, {})

            def read(name: str) -> bytes:
                offset, size = members[name]
                f.seek(offset)
                return f.read(size)

            meta = json.loads(read(f"{key}.json")) if f"{key}.json" in members else dict(row)
            name = main_image(key, sorted(members))
            image = None
            if name is not None:
                image = Image.open(io.BytesIO(read(name)))
                image.load()
            yield image, meta
    finally:
        for f, _ in handles.values():
            f.close()
