"""`nst export RUN --format folder --to DIR`: a finished run as an ImageFolder tree.

Each ok sample's image goes to DIR/<its source's relative path, with the output's
extension> (a copy of --styles-per-image gets a `_s{copy}` suffix), which is the layout
stylize-datasets users expect. Every file is written to a temporary name, and each shard's
files are fsynced together before they are renamed into place (then their folders are fsynced),
so a name never points at a torn image, even after a power cut. A file already there with the
manifest's sha256 is skipped and temporaries a killed export left are removed, so an interrupted
export is finished by running it again. Shards are read one at a time, from their manifests and tars.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

from pipeline.errors import BadInput, NSTError
from pipeline.io.atomic import BatchWriter, atomic_write_bytes, remove_stale_temps
from pipeline.io.shards import commit_holds, read_manifest
from pipeline.progress import bar
from pipeline.run.folder.plan import RunPlan

FORMATS = ("folder",)


def target_name(row: dict, ext: str) -> str:
    """The exported file's path relative to DIR: the source's relative path, extension replaced."""
    source = row.get("source") or row["key"]
    if "#" in source:  # a tar member: its __key__ path
        source = source.split("#", 1)[1]
    if os.path.isabs(source) or source.startswith(".."):
        raise BadInput(f"sample {row['key']} has source {source!r} outside the DATA root; "
                       f"export needs relative sources (plan the run from a folder or a list)")
    stem = os.path.splitext(source)[0]
    extra = row.get("extra") or {}
    if "video" in extra and "frame" in extra:  # `nst video`: a clip's frames in a folder of its name
        return f"{stem}/{int(extra['frame']):06d}.{ext}"
    copy = extra.get("copy")
    return f"{stem}{'' if copy is None else f'_s{copy}'}.{ext}"


def _image_ext(outputs: dict) -> str | None:
    return next((e for e in outputs if e not in ("json", "txt", "cls")), None)


def export_folder(plan: RunPlan, to: Path, progress: bool = True) -> tuple[int, int]:
    """(written, already there) image files; raises if the run is not complete."""
    to = Path(to)
    written = skipped = 0
    cleaned: set[Path] = set()  # folders already rid of a killed export's temporaries
    batch = BatchWriter()
    pbar = bar(plan.total, desc="export", unit="img", disable=not progress)
    try:
        for shard in plan.shards:
            paths = plan.shard_paths(shard)
            _, problem = commit_holds(paths)
            if problem is not None:
                raise NSTError(f"shard {shard['name']} is not committed ({problem}); finish the run first")
            wanted = {}
            for row in read_manifest(paths.manifest):
                ext = _image_ext(row.get("outputs", {})) if row["status"] == "ok" else None
                if ext is not None:
                    wanted[f"{row['key']}.{ext}"] = (to / target_name(row, ext), row["outputs"][ext]["sha256"])
            with tarfile.open(paths.tar, "r:") as tf:
                for m in tf:
                    if m.name not in wanted:
                        continue
                    dest, sha = wanted[m.name]
                    if dest.parent not in cleaned:
                        remove_stale_temps(dest.parent)
                        cleaned.add(dest.parent)
                    if dest.exists() and hashlib.sha256(dest.read_bytes()).hexdigest() == sha:
                        skipped += 1
                    else:
                        batch.add(dest, tf.extractfile(m).read())
            written += batch.flush()
            pbar.update(shard["count"])
        w, s = _export_videos(plan, to)
        written, skipped = written + w, skipped + s
    finally:
        batch.discard()
        pbar.close()
    return written, skipped


def _export_videos(plan: RunPlan, to: Path) -> tuple[int, int]:
    """`nst video` runs: each clip's mp4 (DIR/videos/KEY.mp4, named in KEY.json) beside its frames' folder."""
    import json

    written = skipped = 0
    for record in sorted((plan.root / "videos").glob("*.json")) if (plan.root / "videos").is_dir() else ():
        meta = json.loads(record.read_text())
        mp4 = plan.root / meta["mp4"]
        dest = to / (os.path.splitext(target_name({"source": meta["source"], "key": meta["video"]}, "mp4"))[0]
                     + ".mp4")
        data = mp4.read_bytes()
        if dest.exists() and dest.read_bytes() == data:
            skipped += 1
        else:
            atomic_write_bytes(dest, data)  # durable, like the frames beside it
            written += 1
    return written, skipped


def export_run(out: Path, to: Path, fmt: str = "folder", show_progress: bool = True) -> tuple[int, int]:
    """`nst export`: a finished run's images as a folder tree mirroring the inputs; (written, already there)."""
    from pipeline.errors import BadInput
    from pipeline.run.folder.plan import load_run

    from pipeline.io.oserrors import is_output_error, output_error

    if fmt not in FORMATS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    plan = load_run(out)
    if plan.data.get("task") == "video":  # a clip whose mp4 a stopped run did not write yet
        from pipeline.tasks.video_finish import finish_videos

        finish_videos(out)
    try:
        return export_folder(plan, to, show_progress)
    except OSError as exc:  # a failed write under --to: one line, exit 6/7/8; rerun to finish
        if not is_output_error(exc):
            raise
        raise output_error(exc, Path(to)) from None
