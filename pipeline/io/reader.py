"""Turn a DATA argument into an ordered list of input rows.

DATA is one of:
- a directory: every image file below it (recursive, sorted by relative path,
  extensions matched case-insensitively);
- a .txt/.lst file: one path per line (blank lines and '#' comments ignored);
- a .csv file or a .jsonl/.ndjson file with a `path` column and optional
  `style` and `key` columns.

Relative paths in list files are resolved against the list file's folder; all
paths are made absolute so a run can be resumed from any working directory.
Each row is (path, style or None, key or None); the order is the plan's order.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import BadInput
from pipeline.io.images import IMAGE_EXTENSIONS

LIST_SUFFIXES = (".txt", ".lst", ".list")
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class InputRow:
    path: str
    style: str | None = None
    key: str | None = None


def is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def scan_dir(root: Path) -> list[Path]:
    """Image files below root, sorted by their path relative to root."""
    files = [p for p in root.rglob("*") if p.is_file() and is_image_name(p.name)
             and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _resolve(base: Path, value: str) -> str:
    p = Path(value).expanduser()
    return os.path.abspath(p if p.is_absolute() else (base / p))


def _rows_from_records(records, base: Path, where: str) -> list[InputRow]:
    rows = []
    for n, rec in records:
        if not isinstance(rec, dict):
            raise BadInput(f"{where} line {n}: expected an object with a 'path' field, got {rec!r}")
        path = rec.get("path")
        if not isinstance(path, str) or not path.strip():
            raise BadInput(f"{where} line {n}: missing or empty 'path' (got {path!r})")
        style = rec.get("style") or None
        key = rec.get("key") or None
        rows.append(InputRow(_resolve(base, path.strip()),
                             _resolve(base, str(style).strip()) if style else None,
                             str(key).strip() if key else None))
    return rows


def read_csv(path: Path) -> list[InputRow]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "path" not in [h.strip() for h in reader.fieldnames]:
            raise BadInput(f"CSV file {str(path)!r} has no 'path' column (columns: {reader.fieldnames})")
        records = [(i + 2, {(k or "").strip(): (v or "") for k, v in rec.items()}) for i, rec in enumerate(reader)]
    return _rows_from_records(records, path.parent, f"CSV file {str(path)!r}")


def read_jsonl(path: Path) -> list[InputRow]:
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append((n, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise BadInput(f"JSON-Lines file {str(path)!r} line {n}: {exc.msg}")
    return _rows_from_records(records, path.parent, f"JSON-Lines file {str(path)!r}")


def read_list(path: Path) -> list[InputRow]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            rows.append(InputRow(_resolve(path.parent, s)))
    return rows


def read_data(data: str | Path) -> list[InputRow]:
    """The ordered input rows of DATA, or BadInput naming what is wrong."""
    p = Path(data)
    if not p.exists():
        raise BadInput(f"DATA not found: {str(p)!r}")
    if p.is_dir():
        rows = [InputRow(os.path.abspath(f)) for f in scan_dir(p)]
        where = f"directory {str(p)!r} has no image files ({', '.join(IMAGE_EXTENSIONS)})"
    else:
        suffix = p.suffix.lower()
        try:
            if suffix in CSV_SUFFIXES:
                rows = read_csv(p)
            elif suffix in JSONL_SUFFIXES:
                rows = read_jsonl(p)
            elif suffix in LIST_SUFFIXES:
                rows = read_list(p)
            else:
                raise BadInput(f"DATA {str(p)!r} is not a directory, .txt, .csv or .jsonl file")
        except UnicodeDecodeError:
            raise BadInput(f"DATA file {str(p)!r} is not UTF-8 text")
        where = f"DATA file {str(p)!r} lists no inputs"
    if not rows:
        raise BadInput(where)
    return rows


def read_styles(styles: list[str | Path]) -> list[str]:
    """STYLE arguments (files or directories) -> ordered list of style files."""
    out: list[str] = []
    for s in styles:
        p = Path(s)
        if p.is_dir():
            found = scan_dir(p)
            if not found:
                raise BadInput(f"style directory {str(p)!r} has no image files")
            out.extend(os.path.abspath(f) for f in found)
        elif p.is_file():
            out.append(os.path.abspath(p))
        else:
            raise BadInput(f"style not found: {str(p)!r}")
    if not out:
        raise BadInput("at least one --style is required")
    return out
