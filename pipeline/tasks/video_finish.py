"""After `nst video`'s shards commit: each finished clip as an .mp4 and its per-video record.

For every committed video shard whose frames are all ok, DIR/videos/{video-key}.mp4 (H.264,
the clip's frame rate) is encoded from the committed frames and written atomically, and
DIR/videos/{video-key}.json records the warping error (Lai et al. 2018: the mean over frames
1.. of the masked error each frame recorded), the flow's reliable share, seconds and
evaluations of the first frame and of the later ones. Both are keyed by the shard's sha256:
running it again (a resumed or repeated command) skips clips already written.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.io.atomic import atomic_write_text
from pipeline.io.shards import read_manifest
from pipeline.run.folder.plan import load_run
from pipeline.run.views.shard_state import committed_rows


def video_summary(rows: list[dict]) -> dict:
    """The per-video figures from its frames' manifest rows (in frame order)."""
    first, later = rows[0], rows[1:]
    errors = [r["warping_error"] for r in later if r.get("warping_error") is not None]
    extra = first.get("extra") or {}

    def mean(values):
        return round(float(np.mean(values)), 6) if values else None

    return {
        "video": extra.get("video"), "source": first.get("source"), "frames": len(rows),
        "fps": extra.get("fps"), "variable_rate": extra.get("variable_rate"), "resampled": extra.get("resampled"),
        "size": first.get("size"),
        "warping_error": mean(errors),
        "reliable": mean([r["reliable"] for r in later if r.get("reliable") is not None]),
        "seconds_first": first.get("seconds"), "seconds_later": mean([r["seconds"] for r in later]),
        "evaluations_first": first.get("iterations"),
        "evaluations_later": mean([r["iterations"] for r in later]),
        "temporal_frames": sum(1 for r in later if r.get("temporal")),
    }


def frames_of(tar: Path, keys: list[str]) -> list[np.ndarray]:
    """The committed frames (key.png) in `keys` order, as uint8 RGB arrays."""
    found: dict[str, np.ndarray] = {}
    wanted = {f"{k}.png": k for k in keys}
    with tarfile.open(tar, "r:") as tf:
        for m in tf:
            if m.name in wanted:
                found[wanted[m.name]] = np.asarray(Image.open(io.BytesIO(tf.extractfile(m).read())).convert("RGB"))
    return [found[k] for k in keys]


def finish_videos(out: str | Path) -> list[dict]:
    """Write the mp4 and record of every finished clip not yet written; returns every finished clip's record."""
    from pipeline.io.video import write_mp4

    plan = load_run(Path(out))
    folder = Path(out) / "videos"
    done = []
    for shard, paths, record, rows in committed_rows(plan):
        rows = sorted(rows, key=lambda r: r["index"])
        if not rows or any(r["status"] != "ok" for r in rows):
            continue
        summary = {**video_summary(rows), "shard": shard["name"], "shard_sha256": record["tar"]["sha256"]}
        summary["mp4"] = f"videos/{summary['video']}.mp4"
        meta_path = folder / f"{summary['video']}.json"
        mp4 = folder / f"{summary['video']}.mp4"
        try:
            old = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            old = None
        if old is None or old.get("shard_sha256") != summary["shard_sha256"] or not mp4.exists():
            write_mp4(mp4, frames_of(paths.tar, [r["key"] for r in rows]), summary["fps"])
            atomic_write_text(meta_path, json.dumps(summary, indent=1, sort_keys=True) + "\n")
        done.append(summary)
    return done


def frame_strip(out: str | Path, record: dict, n: int = 6) -> bytes:
    """PNG of up to `n` consecutive frames of a finished clip side by side (`nst report`), from the
    middle of the clip, read from its committed shard."""
    from pipeline.io.images import encode_image

    plan = load_run(Path(out))
    shard = next(sh for sh in plan.shards if sh["name"] == record["shard"])
    paths = plan.shard_paths(shard)
    rows = sorted(read_manifest(paths.manifest), key=lambda r: r["index"])
    first = max(0, (len(rows) - n) // 2)
    frames = frames_of(paths.tar, [r["key"] for r in rows[first:first + n]])
    h, w = frames[0].shape[:2]
    sheet = np.full((h, len(frames) * (w + 2) - 2, 3), 255, np.uint8)
    for i, f in enumerate(frames):
        sheet[:, i * (w + 2):i * (w + 2) + w] = f
    return encode_image(Image.fromarray(sheet), "png")
