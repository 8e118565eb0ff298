"""DATA and STYLE arguments -> what a task plans from.

DATA is streamed by `pipeline.io.inputs.Data` (a directory, a .txt/.csv/.jsonl list, or
webdataset tar shards); styles are a short list, resolved here.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import BadInput
from pipeline.io.inputs import Data, InputRow, is_image_name, walk_images

__all__ = ["Data", "InputRow", "read_data", "read_styles", "scan_dir", "is_image_name"]


def read_data(data: str | Path, label_from: str | None = None) -> Data:
    """DATA as a re-iterable stream of input rows, or BadInput naming what is wrong."""
    return Data(data, label_from)


def scan_dir(root: Path) -> list[Path]:
    """Image files below root, sorted by their path relative to root."""
    return [Path(root) / rel for rel in walk_images(Path(root))]


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
