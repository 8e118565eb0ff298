"""`python -m pipeline.bench.video`: temporal consistency measured, `nst video` against stylizing every frame alone.

Both runs go through the real `nst video` Task and runner on the bundled clip
(examples/video/astronaut_pan.mp4, made by `--make-clip` from a public-domain photo) with
the same preset, size, style, seeds and evaluations per frame; the per-frame run sets
temporal_weight=0 and warp_start=false, so every frame starts from the preset's start.
Recorded: the warping error (Lai et al. 2018, the input's flow and consistency mask),
the content and style terms (the look), seconds and CPU seconds per frame. The record
goes to benchmarks/results/video/ and is rendered into BENCHMARKS.md (bench/video_report.py);
`--gif` writes the side-by-side animation the README shows (per-frame left, temporal right).
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.resources import CHECKOUT as ROOT, data_dir

CLIP = data_dir("examples") / "video" / "astronaut_pan.mp4"
PHOTO = data_dir("examples") / "content" / "astronaut.jpg"
PROVENANCE = ("a 2 s pan and zoom (16 frames at 8 fps, 256x192) over examples/content/astronaut.jpg "
              "(NASA, public domain), made by `python -m pipeline.bench.video --make-clip`")
PER_FRAME_SETS = ["temporal_weight=0", "warp_start=false"]
TARGET_RATIO = 1 / 3


def make_clip(path: Path = CLIP, frames: int = 16, wh=(256, 192), fps: int = 8) -> Path:
    from pipeline.io.clips import pan_zoom
    from pipeline.io.video import write_mp4

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_mp4(path, pan_zoom(Image.open(PHOTO), frames, wh), fps)


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_one(name: str, out: Path, clip: Path, style: Path, size: int, iterations: int, later: int,
            sets: list[str], threads: int) -> dict:
    """One `nst video` run (in this process); its per-video record plus seconds, CPU seconds and the look."""
    from pipeline import api
    from pipeline.io.shards import read_manifest
    from pipeline.run.folder.plan import load_run
    from pipeline.tasks.registry import method_config, video_task
    from pipeline.tasks.video_finish import finish_videos

    cfg = method_config("video", "video", {"size": size, "iterations": iterations, "later_iterations": later},
                        sets)
    task = video_task(cfg, clip, [style])
    start, cpu = time.perf_counter(), _cpu_seconds()
    summary = api.run_task(task, out, threads=None if threads == 1 else threads, deterministic=threads == 1,
                           overwrite=True, progress=False, device="cpu")
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    if summary["exit_status"] != 0:
        raise RuntimeError(f"{name} run failed: {summary}")
    video = finish_videos(out)[0]
    plan = load_run(out)
    rows = sorted((r for sh in plan.shards for r in read_manifest(plan.shard_paths(sh).manifest)),
                  key=lambda r: r["index"])
    return {"run": name, "sets": sets, "frames": video["frames"], "warping_error": video["warping_error"],
            "reliable": video["reliable"], "evaluations_first": video["evaluations_first"],
            "evaluations_later": video["evaluations_later"], "seconds_first": video["seconds_first"],
            "seconds_later": video["seconds_later"], "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            "content": float(np.mean([r["losses"]["content"] for r in rows])),
            "style": float(np.mean([r["losses"]["style"] for r in rows])),
            "out": str(out)}


def frames(out: Path) -> list[np.ndarray]:
    """A finished run's frames in order, from its committed shard."""
    from pipeline.run.views.outputs import iter_samples

    return [np.asarray(img.convert("RGB")) for img, _meta in iter_samples(out)]


def look_of_run(out: Path, clip: Path, style: Path, size: int) -> dict:
    """The look ruler (methods/look.py, EfficientNet-Lite0) over a finished run: each output frame against
    its input frame at the run's working size and the style; the means over frames."""
    from pipeline.io.video import decode
    from pipeline.methods.look import LookRuler
    from pipeline.pixels import target_size

    outputs = [Image.fromarray(f) for f in frames(out)]
    wh = outputs[0].size
    inputs = decode(clip, size=lambda _wh: target_size(*_wh, size)).frames[:len(outputs)]
    ruler, style_img = LookRuler(), Image.open(style).convert("RGB")
    looks = [ruler.score_one(Image.fromarray(c).resize(wh), style_img, o) for c, o in zip(inputs, outputs)]
    return {"structure": round(float(np.mean([x.structure for x in looks])), 4),
            "style_match": round(float(np.mean([x.style_match for x in looks])), 4)}


def side_by_side_gif(left: Path, right: Path, path: Path, frame_ms: int = 125, gap: int = 4) -> Path:
    """An animated GIF: run `left`'s frames beside run `right`'s, frame by frame."""
    from pipeline.io.atomic import atomic_write_bytes
    import io

    pairs = list(zip(frames(left), frames(right)))
    h, w = pairs[0][0].shape[:2]
    sheets = []
    for a, b in pairs:
        sheet = np.full((h, 2 * w + gap, 3), 255, np.uint8)
        sheet[:, :w], sheet[:, w + gap:] = a, b
        sheets.append(Image.fromarray(sheet))
    buf = io.BytesIO()
    sheets[0].save(buf, format="GIF", save_all=True, append_images=sheets[1:], duration=frame_ms, loop=0,
                   optimize=False)
    atomic_write_bytes(path, buf.getvalue())
    return path


def machine() -> dict:
    from pipeline.bench.report import cpu_model
    import torch

    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "load_start": round(os.getloadavg()[0], 2)}


def measure(a: argparse.Namespace) -> dict:
    work = Path(a.work)
    record = {"kind": "video", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": "python -m pipeline.bench.video " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
              "machine": machine(), "clip": str(Path(a.clip).resolve().relative_to(ROOT))
              if Path(a.clip).resolve().is_relative_to(ROOT) else str(a.clip),
              "provenance": PROVENANCE if Path(a.clip).resolve() == CLIP else a.clip,
              "style": Path(a.style).name, "size": a.size, "iterations": a.iterations,
              "later_iterations": a.later_iterations, "threads": a.threads, "target_ratio": TARGET_RATIO}
    rows = [run_one("per-frame", work / "per-frame", Path(a.clip), Path(a.style), a.size, a.iterations,
                    a.later_iterations, PER_FRAME_SETS, a.threads),
            run_one("temporal", work / "temporal", Path(a.clip), Path(a.style), a.size, a.iterations,
                    a.later_iterations, list(a.set), a.threads)]
    record["rows"] = rows
    record["machine"]["load_end"] = round(os.getloadavg()[0], 2)
    per, tem = rows
    record["ratio"] = tem["warping_error"] / per["warping_error"]
    record["met"] = record["ratio"] <= TARGET_RATIO
    record["look"] = {"content": tem["content"] / per["content"] - 1, "style": tem["style"] / per["style"] - 1}
    rescore(record, Path(a.clip), Path(a.style))
    if a.gif:
        side_by_side_gif(Path(per["out"]), Path(tem["out"]), Path(a.gif))
        record["gif"] = a.gif
    return record


def rescore(record: dict, clip: Path, style: Path) -> dict:
    """Each row's look ruler (structure, style match) from its run folder, and the temporal run's
    difference from the per-frame run's (target: within 0.05 on both)."""
    for row in record["rows"]:
        row["ruler"] = look_of_run(Path(row["out"]), clip, style, record["size"])
    per, tem = (r["ruler"] for r in record["rows"])
    record["ruler_delta"] = {k: round(tem[k] - per[k], 4) for k in per}
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.bench.video", description=__doc__.splitlines()[0])
    p.add_argument("--make-clip", action="store_true", help=f"(re)make {CLIP.relative_to(ROOT)} and exit")
    p.add_argument("--clip", default=str(CLIP))
    p.add_argument("--style", default=str(data_dir("examples") / "style" / "great_wave_of_kanagawa.jpg"))
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--iterations", type=int, default=200, help="first frame's evaluations (both runs)")
    p.add_argument("--later-iterations", type=int, default=100, help="each later frame's evaluations (both runs)")
    p.add_argument("--set", action="append", default=[], help="extra key=value for the temporal run")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", default="runs/bench-video", help="where the two runs go")
    p.add_argument("--save", default=None, help="write the record (JSON) here")
    p.add_argument("--markdown", default=None, help="re-render this BENCHMARKS.md from the records")
    p.add_argument("--gif", default=None, help="write the side-by-side GIF here")
    p.add_argument("--rescore", action="store_true", help="add the look ruler to the --save record from its "
                                                          "runs' folders (no new runs)")
    a = p.parse_args(argv)
    if a.make_clip:
        print(make_clip())
        return 0
    if a.rescore:
        import json

        record = json.loads(Path(a.save).read_text())
        rescore(record, ROOT / record["clip"], data_dir("examples") / "style" / record["style"])
    else:
        record = measure(a)
    from pipeline.bench.video_report import text

    print(text(record))
    if a.save:
        from pipeline.bench.report import render_benchmarks, save_result

        save_result(record, a.save)
        if a.markdown:
            render_benchmarks(Path(a.save).parent.parent, a.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
