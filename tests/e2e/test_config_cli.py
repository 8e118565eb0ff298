"""Bad config values through `nst` as a user types them: one line on stderr, exit 2, nothing written."""

import os
import subprocess
import sys

import pytest



def nst(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("args,message", [
    (["--set", "content_weight=abc"], "content_weight must be a finite number >= 0, got 'abc'"),
    (["--set", "seed=abc"], "seed must be an integer >= 0, got 'abc'"),
    (["--set", "tv_weight=nan"], "tv_weight must be a finite number >= 0, got 'nan'"),
    (["--set", "content_weight=1e400"], "content_weight must be a finite number >= 0, got '1e400'"),
    (["--set", "preserve_colors=maybe"], "preserve_colors must be true or false, got 'maybe'"),
    (["--set", "style_layers=[[1]]"], "style_layers must be a list of strings"),
    (["--set", "sizee=64"], "did you mean 'size'?"),
    (["--size", "100000", "--set", "upscale=true"], "(tile: auto), "),
    (["--size", "100000", "--set", "upscale=true", "--max-memory", "1G"], "--max-memory 1.0 GiB: the largest size the cap allows is"),
    (["--max-memory", "lots"], "max_memory must be a memory size"),
])
def test_cli_bad_values_one_line_exit_2(images, tmp_path, args, message):
    content, style = images
    out = tmp_path / "o" / "out.png"
    r = nst("one", content, style, "-o", out, "--iterations", 1, *args)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert not (tmp_path / "o").exists()


def test_missing_output_folder_is_created_and_a_file_in_the_way_refused(images, tmp_path):
    content, style = images
    out = tmp_path / "new" / "deeper" / "out.png"
    r = nst("one", content, style, "-o", out, "--size", 32, "--iterations", 1)
    assert r.returncode == 0, r.stderr
    assert out.is_file()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = nst("one", content, style, "-o", blocker / "out.png", "--size", 32, "--iterations", 1)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"cannot create output folder {str(blocker)!r}" in lines[0], r.stderr
