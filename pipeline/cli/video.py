"""`nst video`: stylize clips with temporal consistency (Ruder et al. 2016), one clip per shard, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.app import DETERMINISTIC, THREADS, app, fail
from pipeline.cli.methods import DEVICE, DEVICES, LEASE_TTL, OUT, OVERWRITE, PROGRESS, RETRY, SEED, SET, _finish
from pipeline.errors import EXIT_OK, EXIT_SAMPLES_FAILED, NSTError


@app.command()
def video(
    data: Path = typer.Argument(..., help="A video file, a folder of videos, or a .txt list of them"),
    style: List[Path] = typer.Option(..., "--style", "-s", help="Style image or directory (repeatable: a blend)"),
    out: Path = OUT,
    config: str = typer.Option("video", "--config", "-c", help="Preset name in configs/ or a YAML file"),
    set_: List[str] = SET,
    size: Optional[int] = typer.Option(None, help="Longest side of the frames in pixels"),
    fps: Optional[float] = typer.Option(None, help="Resample every clip to this frame rate [default: the "
                                        "stream's own; a variable rate is resampled to it]"),
    max_frames: Optional[int] = typer.Option(None, help="Stylize at most this many frames of each clip"),
    iterations: Optional[int] = typer.Option(None, help="Loss-and-gradient evaluations of the first frame"),
    later_iterations: Optional[int] = typer.Option(None, help="Evaluations of every later frame "
                                                   "[default: the preset's, else --iterations]"),
    seed: Optional[int] = SEED, devices: int = DEVICES, device: str = DEVICE,
    retry_failed: bool = RETRY, overwrite: bool = OVERWRITE, lease_ttl: float = LEASE_TTL,
    progress: bool = PROGRESS, threads: Optional[int] = THREADS, deterministic: bool = DETERMINISTIC,
):
    """Stylize videos frame by frame, each frame from the previous one warped by optical flow.

    Each clip is one shard (never split); frames are samples `{video-key}_{frame:06d}`. When a
    clip's frames are all committed, DIR/videos/{video-key}.mp4 (H.264) and .json (its warping
    error) are written. A stopped run resumes at the first frame not committed.
    """
    from pytorch_lightning.utilities import rank_zero_only

    from pipeline import api
    from pipeline.run.runner import RunOptions

    try:
        opts = RunOptions.pick(locals()).validate()
        cfg = api.method_config("video", config, {"size": size, "iterations": iterations, "seed": seed, "fps": fps,
                                                  "max_frames": max_frames, "later_iterations": later_iterations},
                                set_)
        task = api.video_task(cfg, data, style)
        code = api.execute_run(task, opts)
        if code in (EXIT_OK, EXIT_SAMPLES_FAILED) and getattr(rank_zero_only, "rank", 0) == 0:
            for v in api.finish_videos(out):
                typer.echo(f"nst video: {out / v['mp4']} ({v['frames']} frames at {v['fps']} fps, "
                           f"warping error {v['warping_error']})", err=True)
    except NSTError as exc:
        fail(exc)
    _finish(code, opts.out)
