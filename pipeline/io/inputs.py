"""DATA as a stream of input rows, whatever its form: one row at a time, never the whole list.

DATA is a directory of images (recursive, sorted by relative path), a .txt/.lst list,
a .csv or .jsonl with a `path` column, or webdataset tar shards (a directory of .tar,
a brace pattern, a wids shardindex.json). Every row says where to read the input
(`path`, absolute) and what to publish (`rel`: relative to the DATA root, which run.json
records once), plus what the format adds: a style or key column, other columns (passed
through), a class label, or a tar member's location and its passed-through members.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pipeline.errors import BadInput
from pipeline.io.images import IMAGE_EXTENSIONS
from pipeline.io.locations import member_ref, parse_member_ref  # noqa: F401 (part of this module's API)

LIST_SUFFIXES = (".txt", ".lst", ".list")
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
KNOWN_COLUMNS = ("path", "style", "key")


@dataclass(frozen=True)
class InputRow:
    """One input. `path` is what a worker opens: a file, or a tar member reference
    (`member_ref`), which `pipeline.io.images` reads by offset."""

    path: str
    style: str | None = None
    key: str | None = None
    rel: str | None = None                               # published source (relative to the root)
    columns: dict = field(default_factory=dict)          # extra CSV/JSONL columns
    label: str | None = None                             # class name (--label-from)
    passthrough: dict = field(default_factory=dict)      # tar: ext -> [offset, length]


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def walk_images(root: Path) -> Iterator[str]:
    """Relative paths of the image files below root in the order of their relative path
    (a folder sorts as name + "/", which makes the depth-first walk match a global sort),
    holding one folder's listing per level, never the whole tree."""

    def walk(d: str, prefix: str):
        try:
            entries = list(os.scandir(d))
        except OSError:
            return
        items = []
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_dir():
                items.append((e.name + "/", e))
            elif e.is_file() and is_image_name(e.name):
                items.append((e.name, e))
        for sort_name, e in sorted(items, key=lambda t: t[0]):
            if sort_name.endswith("/"):
                yield from walk(e.path, prefix + sort_name)
            else:
                yield prefix + e.name

    yield from walk(str(root), "")


class Data:
    """A re-iterable DATA argument; iterate it to stream its rows (planning iterates once)."""

    def __init__(self, data: str | Path, label_from: str | None = None):
        self.arg = str(data)
        self.label_from = label_from
        p = Path(self.arg)
        from pipeline.io.tar_input import is_tar_data

        if is_tar_data(self.arg):
            self.kind = "tar"
            from pipeline.io.tar_input import shard_paths

            self.root, self.shards = shard_paths(self.arg)
        elif not p.exists():
            raise BadInput(f"DATA not found: {self.arg!r}")
        elif p.is_dir():
            self.kind, self.root = "dir", p.resolve()
        else:
            suffix = p.suffix.lower()
            kinds = {**dict.fromkeys(CSV_SUFFIXES, "csv"), **dict.fromkeys(JSONL_SUFFIXES, "jsonl"),
                     **dict.fromkeys(LIST_SUFFIXES, "list")}
            if suffix not in kinds:
                raise BadInput(f"DATA {self.arg!r} is not a directory, .txt, .csv, .jsonl or webdataset .tar shards")
            self.kind, self.root, self.file = kinds[suffix], p.parent.resolve(), p
        self._root_str = str(self.root).rstrip("/")
        if label_from is not None:
            ok = label_from == "parent" or (label_from.startswith("column:") and len(label_from) > 7)
            if not ok:
                raise BadInput(f"--label-from must be parent or column:NAME, got {label_from!r}")
            if label_from.startswith("column:") and self.kind not in ("csv", "jsonl"):
                raise BadInput(f"--label-from {label_from} needs a CSV or JSON-Lines DATA, got {self.arg!r}")

    def __iter__(self) -> Iterator[InputRow]:
        n = 0
        try:
            for row in self._rows():
                n += 1
                yield row
        except UnicodeDecodeError:
            raise BadInput(f"DATA file {self.arg!r} is not UTF-8 text") from None
        if n == 0:
            raise BadInput(f"directory {self.arg!r} has no image files ({', '.join(IMAGE_EXTENSIONS)})"
                           if self.kind == "dir" else f"DATA {self.arg!r} lists no inputs")

    def _rows(self) -> Iterator[InputRow]:
        if self.kind == "dir":
            root = str(self.root)
            for rel in walk_images(self.root):
                yield InputRow(os.path.join(root, rel), rel=rel, label=self._parent_label(rel))
        elif self.kind == "list":
            with open(self.file, encoding="utf-8") as f:
                for line in f:
                    s = line.strip()
                    if s and not s.startswith("#"):
                        path, rel = self._resolve(s)
                        yield InputRow(path, rel=rel, label=self._parent_label(rel))
        elif self.kind == "tar":
            yield from self._tar_rows()
        else:
            yield from self._record_rows()

    def _parent_label(self, rel: str) -> str | None:
        if self.label_from != "parent":
            return None
        parent = os.path.basename(os.path.dirname(rel))
        if not parent:
            raise BadInput(f"--label-from parent: input {rel!r} is not inside a class folder")
        return parent

    def _resolve(self, value: str) -> tuple[str, str]:
        """(absolute path, published source: relative to the root when inside it)."""
        if not (value[:1] in ("/", "~", ".") or "/." in value or "//" in value or value.endswith("/")):
            return f"{self._root_str}/{value}", value  # already normal and relative: the common case
        p = os.path.expanduser(value)
        path = os.path.abspath(p if os.path.isabs(p) else os.path.join(self.root, p))
        rel = os.path.relpath(path, self.root)
        return path, (path if rel.startswith("..") else rel)

    def _records(self) -> Iterator[tuple[int, object]]:
        where = f"{'CSV' if self.kind == 'csv' else 'JSON-Lines'} file {str(self.file)!r}"
        with open(self.file, newline="" if self.kind == "csv" else None, encoding="utf-8") as f:
            if self.kind == "csv":
                reader = csv.DictReader(f)
                if not reader.fieldnames or "path" not in [h.strip() for h in reader.fieldnames]:
                    raise BadInput(f"{where} has no 'path' column (columns: {reader.fieldnames})")
                for i, rec in enumerate(reader):
                    yield i + 2, {(k or "").strip(): (v or "") for k, v in rec.items()}
            else:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            yield n, json.loads(line)
                        except json.JSONDecodeError as exc:
                            raise BadInput(f"{where} line {n}: {exc.msg}") from None

    def _record_rows(self) -> Iterator[InputRow]:
        where = f"{'CSV' if self.kind == 'csv' else 'JSON-Lines'} file {str(self.file)!r}"
        column = self.label_from[7:] if self.label_from and self.label_from.startswith("column:") else None
        for n, rec in self._records():
            if not isinstance(rec, dict):
                raise BadInput(f"{where} line {n}: expected an object with a 'path' field, got {rec!r}")
            path = rec.get("path")
            if not isinstance(path, str) or not path.strip():
                raise BadInput(f"{where} line {n}: missing or empty 'path' (got {path!r})")
            style, key = rec.get("style") or None, rec.get("key") or None
            absolute, rel = self._resolve(path.strip())
            label = None
            if column is not None:
                label = rec.get(column)
                if label in (None, ""):
                    raise BadInput(f"{where} line {n}: --label-from column:{column} but the row has no {column!r}")
                label = str(label)
            elif self.label_from == "parent":
                label = self._parent_label(rel)
            yield InputRow(absolute, self._resolve(str(style).strip())[0] if style else None,
                           str(key).strip() if key else None, rel,
                           {k: v for k, v in rec.items() if k not in KNOWN_COLUMNS}, label)

    def _tar_rows(self) -> Iterator[InputRow]:
        from pipeline.io.tar_input import list_samples

        for shard in self.shards:
            tar = str(self.root / shard)
            for s in list_samples(Path(tar)):
                label = None
                if self.label_from == "parent":
                    label = os.path.basename(os.path.dirname(s.key)) or None
                yield InputRow(member_ref(tar, s.offset, s.length), None, s.key, f"{shard}#{s.image}",
                               label=label, passthrough=s.passthrough)
