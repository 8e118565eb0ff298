"""`nst video`: stylize clips with temporal consistency (Ruder et al. 2016), one clip per shard, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.app import app, fail
from pipeline.cli.methods import SEED, SET
from pipeline.cli.run_options import run_command
from pipeline.errors import NSTError
from pipeline.run.execute.options import RunOptions


@app.command()
@run_command(exclude=("shard_size",))
def video(
    data: Path = typer.Argument(..., help="A video file, a folder of videos, or a .txt list of them"),
    style: List[Path] = typer.Option(..., "--style", "-s", help="Style image or directory (repeatable: a blend)"),
    config: str = typer.Option("video", "--config", "-c", help="Preset name in configs/ or a YAML file"),
    set_: List[str] = SET,
    size: Optional[int] = typer.Option(None, help="Longest side of the frames in pixels"),
    fps: Optional[float] = typer.Option(None, help="Resample every clip to this frame rate [default: the "
                                        "stream's own; a variable rate is resampled to it]"),
    max_frames: Optional[int] = typer.Option(None, help="Stylize at most this many frames of each clip"),
    iterations: Optional[int] = typer.Option(None, help="Loss-and-gradient evaluations of the first frame"),
    later_iterations: Optional[int] = typer.Option(None, help="Evaluations of every later frame "
                                                   "[default: the preset's, else --iterations]"),
    seed: Optional[int] = SEED,
    run: RunOptions = None,
):
    """Stylize videos frame by frame, each frame from the previous one warped by optical flow.

    Each clip is one shard (never split); frames are samples `{video-key}_{frame:06d}`. When a
    clip's frames are all committed, DIR/videos/{video-key}.mp4 (H.264) and .json (its warping
    error) are written. A stopped run resumes at the first frame not committed.
    """
    from pipeline.run.execute.runner import execute
    from pipeline.tasks.registry import method_config, video_task

    try:
        cfg = method_config("video", config, {"size": size, "iterations": iterations, "seed": seed, "fps": fps,
                                              "max_frames": max_frames, "later_iterations": later_iterations},
                            set_)
        code = execute(video_task(cfg, data, style), run)
    except NSTError as exc:
        fail(exc)
    raise typer.Exit(code)
