"""webdataset tar shards as DATA: find the shards, list their samples, read one member by offset.

DATA may be a directory of `.tar` files, a brace pattern (`data/{00000..00099}.tar`, as
webdataset and img2dataset write it) or a wids `shardindex.json`. A sample is the run of
consecutive members that share a key (the member name up to the first dot of its base
name, webdataset's `__key__`). Listing reads tar headers only, seeking over the data (plain
ustar/GNU headers are parsed directly, ten times faster than tarfile's objects; tarfile takes
over at a pax or long-name header), and records where each member's bytes are, so a worker
later reads just its own members with one pread each instead of scanning the archive.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pipeline.errors import BadInput
from pipeline.io.images import IMAGE_EXTENSIONS
from pipeline.io.locations import read_range  # noqa: F401 (part of this module's API)

PASSTHROUGH = ("json", "txt", "cls")   # input members copied into the output sample
LOCATION_SEP = "#"                     # a tar sample's source: "SHARD.tar#MEMBER"
_BRACE = re.compile(r"\{([^{}]*)\}")


def expand_braces(pattern: str) -> list[str]:
    """`a{0..2}b{x,y}` -> a0bx a0by a1bx ...; numeric ranges keep the zero padding of their start."""
    m = _BRACE.search(pattern)
    if m is None:
        return [pattern]
    body, head, tail = m.group(1), pattern[:m.start()], pattern[m.end():]
    r = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if r:
        lo, hi = int(r.group(1)), int(r.group(2))
        if hi < lo:
            raise BadInput(f"brace range {{{body}}} in DATA {pattern!r} runs backwards")
        width = len(r.group(1))
        choices = [str(i).zfill(width) for i in range(lo, hi + 1)]
    else:
        choices = body.split(",")
    return [x for c in choices for x in expand_braces(head + c + tail)]


def is_tar_data(data: str) -> bool:
    """Does DATA name webdataset shards (a pattern, a shardindex.json, a .tar, a folder of them)?"""
    if "{" in data and ".tar" in data:
        return True
    p = Path(data)
    if p.name.endswith(".json") and p.is_file():
        return True
    if p.suffix == ".tar":
        return True
    return p.is_dir() and any(p.glob("*.tar")) and not _has_images(p)


def _has_images(d: Path) -> bool:
    return any(f.suffix.lower() in IMAGE_EXTENSIONS for f in d.iterdir() if f.is_file())


def shard_paths(data: str) -> tuple[Path, list[str]]:
    """(root, shard paths relative to root) of a tar DATA argument, in order."""
    p = Path(data)
    if "{" in data:
        paths = [Path(x) for x in expand_braces(data)]
        root = Path(os.path.commonpath([os.path.abspath(x.parent) for x in paths]))
        missing = [str(x) for x in paths if not x.is_file()]
        if missing:
            raise BadInput(f"DATA {data!r}: {len(missing)} shards not found, e.g. {missing[0]!r}")
        return root, [os.path.relpath(os.path.abspath(x), root) for x in paths]
    if p.is_file() and p.name.endswith(".json"):
        try:
            index = json.loads(p.read_text())
            urls = [e["url"] for e in index["shardlist"]]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise BadInput(f"DATA {data!r} is not a wids shard index (no shardlist of urls)") from None
        root = p.parent.resolve()
        missing = [u for u in urls if not (root / u).is_file()]
        if missing:
            raise BadInput(f"DATA {data!r} lists {len(missing)} missing shards, e.g. {missing[0]!r}")
        return root, urls
    if p.is_file():
        return p.parent.resolve(), [p.name]
    return p.resolve(), sorted(f.name for f in p.glob("*.tar"))


@dataclass
class TarSample:
    """One input sample inside a tar: where its image is and which members pass through."""

    key: str
    image: str                      # member name of the image
    offset: int                     # where its data starts in the tar
    length: int
    passthrough: dict[str, list[int]] = field(default_factory=dict)  # ext -> [offset, length]


def _key_ext(name: str) -> tuple[str, str]:
    base = name.rsplit("/", 1)[-1]
    dot = base.find(".")
    if dot <= 0:
        return name, ""
    return name[:len(name) - len(base) + dot], base[dot + 1:].lower()


def list_samples(tar_path: Path) -> Iterator[TarSample]:
    """The samples of one tar, in member order; a key without an image member is skipped.

    A damaged header ends the listing with BadInput naming the shard (nothing is planned
    from a tar the plan cannot describe); a damaged image *inside* a member is found by the
    worker and recorded as that sample's failed_decode row.
    """
    current: str | None = None
    members: dict[str, tuple[str, int, int]] = {}

    def flush():
        image = next((e for e in members if "." + e.rsplit(".", 1)[-1] in IMAGE_EXTENSIONS), None)
        if image is None:
            return None
        name, off, size = members[image]
        return TarSample(current, name, off, size,
                         {e: [members[e][1], members[e][2]] for e in PASSTHROUGH if e in members})

    try:
        for name, offset, size in members_of(tar_path):
            key, ext = _key_ext(name)
            if key != current:
                if current is not None and (s := flush()) is not None:
                    yield s
                current, members = key, {}
            members[ext] = (name, offset, size)
    except (tarfile.TarError, OSError, ValueError) as exc:  # ValueError: a header field is not a number
        raise BadInput(f"tar shard {str(tar_path)!r} cannot be listed: {exc}") from None
    if current is not None and (s := flush()) is not None:
        yield s


class _NeedsTarfile(Exception):
    """A header this reader does not parse (pax, GNU long names): the stdlib parser takes over."""


_ZERO_BLOCK = bytes(512)
_REGULAR = (b"0", b"\0", b"7")


def _octal(field: bytes) -> int:
    if field[0] & 0x80:  # base-256 (GNU) for large sizes
        return int.from_bytes(field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip()
    return int(digits, 8) if digits else 0


def _plain_members(path: Path) -> Iterator[tuple[str, int, int]]:
    """(name, data offset, size) of the regular files of a plain ustar/GNU tar, header by header:
    about ten times faster than tarfile's objects, which matters at millions of members."""
    with open(path, "rb") as f:
        pos = 0
        while True:
            f.seek(pos)
            hdr = f.read(512)
            if len(hdr) < 512:
                raise tarfile.ReadError(f"truncated header at byte {pos}")
            if hdr == _ZERO_BLOCK:
                return
            if _octal(hdr[148:156]) != sum(hdr[:148]) + 256 + sum(hdr[156:]):
                raise tarfile.ReadError(f"bad header checksum at byte {pos}")
            kind = hdr[156:157]
            if kind in (b"x", b"g", b"L", b"K"):
                raise _NeedsTarfile
            size = _octal(hdr[124:136])
            if kind in _REGULAR:
                name = hdr[:100].split(b"\0", 1)[0]
                prefix = hdr[345:500].split(b"\0", 1)[0] if hdr[257:262] == b"ustar" else b""
                yield (prefix + b"/" + name if prefix else name).decode("utf-8", "surrogateescape"), pos + 512, size
            pos += 512 + (size + 511) // 512 * 512


def members_of(path: Path) -> Iterator[tuple[str, int, int]]:
    """(name, data offset, size) of every regular member, in order."""
    done = 0
    try:
        for member in _plain_members(path):
            yield member
            done += 1
    except _NeedsTarfile:  # continue with the stdlib parser past what was already listed
        with tarfile.open(path, "r:") as tf:
            regular = (m for m in tf if m.isfile())
            for i, m in enumerate(regular):
                if i >= done:
                    yield m.name, m.offset_data, m.size
