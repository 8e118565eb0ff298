"""Thumbnails and full-size copies of sampled outputs, read from committed tars by seeking.

A shard's member offsets come from its tar headers (one pass over the headers,
seeking past the data; the data is not read), once per sampled shard; only the
sampled members' bytes are read, and each against the sha256 its manifest row
recorded. Files are written once: a thumbnail or copy that exists is not made again
(names carry the member's sha256, so a re-done sample gets new ones).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from PIL import Image, ImageOps

from pipeline.io.atomic import atomic_write_bytes
from pipeline.io.shards import tar_members

IMAGE_EXTS = ("png", "jpg", "jpeg", "webp")
THUMB_SIDE = 192


def output_member(row: dict) -> str | None:
    """The member that shows a sample's result: the plain image (stylize, texture, dream), else the
    comparison sheet (invert), else any image but animation frames; None (visualize's maxima)."""
    exts = list((row.get("outputs") or {}).keys())
    for ext in exts:
        if ext in IMAGE_EXTS:
            return ext
    for ext in exts:
        if ext.startswith("sheet.") and ext.rsplit(".", 1)[-1] in IMAGE_EXTS:
            return ext
    for ext in exts:
        if ext.rsplit(".", 1)[-1] in IMAGE_EXTS and not ext.startswith("frame"):
            return ext
    return None


class UnreadableMember(ValueError):
    """A committed tar or member cannot be read back (replaced or damaged since it was committed):
    the card says so. Not an OSError, so that a failed write of the report is never taken for it."""


class TarMembers:
    """Reads single members of a run's committed tars; remembers which tars it opened."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.offsets: dict[str, dict[str, tuple[int, int]]] = {}  # shard -> member -> (offset, size)
        self.opened: list[str] = []

    def read(self, shard: str, member: str) -> bytes:
        try:
            return self._read(shard, member)
        except (OSError, KeyError, tarfile.TarError) as exc:
            raise UnreadableMember(f"{shard}.tar: {member}: {exc}") from None

    def _read(self, shard: str, member: str) -> bytes:
        tar = self.root / "shards" / f"{shard}.tar"
        if shard not in self.offsets:
            self.opened.append(tar.name)
            self.offsets[shard] = {name: (off, size) for name, off, size in tar_members(tar)}
        offset, size = self.offsets[shard][member]
        with open(tar, "rb") as f:
            f.seek(offset)
            return f.read(size)


def _encode_thumb(image: Image.Image, side: int) -> bytes:
    image = image.convert("RGB")
    image.thumbnail((side, side))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def thumb_from_bytes(data: bytes, dest: Path, side: int = THUMB_SIDE) -> Path:
    if not dest.exists():
        with Image.open(io.BytesIO(data)) as img:
            atomic_write_bytes(dest, _encode_thumb(img, side))
    return dest


def thumb_from_file(path: str, thumbs: Path, side: int = THUMB_SIDE) -> Path | None:
    """Thumbnail of an input file (content or style), named by its path; None if it cannot be read.
    Decoded with PIL alone (EXIF orientation applied): pipeline.io.images would import torch."""
    dest = thumbs / f"in-{hashlib.sha1(path.encode()).hexdigest()[:16]}.jpg"
    if dest.exists():
        return dest
    try:
        with Image.open(path) as img:
            data = _encode_thumb(ImageOps.exif_transpose(img), side)
    except Exception:  # noqa: BLE001 - a moved or broken input shows as text in the report
        return None
    atomic_write_bytes(dest, data)
    return dest


def sample_output(row: dict, reader: TarMembers, out: Path) -> tuple[Path, Path] | None:
    """(thumbnail, full-size copy) of a sampled row's output member, made once; None if it has none."""
    ext = output_member(row)
    if ext is None:
        return None
    sha = row["outputs"][ext]["sha256"]
    thumb = out / "thumbs" / f"{row['key']}-{sha[:12]}.jpg"
    full = out / "full" / f"{row['key']}-{sha[:12]}.{ext}"
    if thumb.exists() and full.exists():
        return thumb, full
    data = reader.read(row["shard"], f"{row['key']}.{ext}")
    if hashlib.sha256(data).hexdigest() != sha:
        raise ValueError(f"{row['shard']}.tar: member {row['key']}.{ext} does not match its manifest sha256")
    if not full.exists():
        atomic_write_bytes(full, data)
    return thumb_from_bytes(data, thumb), full


def sample_record(row: dict, reader: TarMembers, out: Path) -> dict | None:
    """A sampled row's `{key}.json` member (its full record: loss curve where one was recorded),
    kept beside the full output so a second report does not read the tar again."""
    meta = (row.get("outputs") or {}).get("json")
    if meta is None:
        return None
    dest = out / "full" / f"{row['key']}-{meta['sha256'][:12]}.json"
    if not dest.exists():
        data = reader.read(row["shard"], f"{row['key']}.json")
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise ValueError(f"{row['shard']}.tar: member {row['key']}.json does not match its manifest sha256")
        atomic_write_bytes(dest, data)
    return json.loads(dest.read_text())


def copy_file(src: Path, dest: Path) -> Path:
    """A full-size copy of a run-level picture (visualize's grids), refreshed when it changed."""
    data = src.read_bytes()
    if not dest.exists() or dest.read_bytes() != data:
        atomic_write_bytes(dest, data)
    return dest
