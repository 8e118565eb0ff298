"""`nst --version`, `nst presets` and Typer's shell completion, as a user calls them."""

import os
import subprocess
import sys

import pipeline
from pipeline.config import describe_preset, preset_names

NST = os.path.join(os.path.dirname(sys.executable), "nst")


def run(*args, **env):
    return subprocess.run([NST, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=120)


def test_version():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == pipeline.__version__


def test_presets_lists_each_with_what_it_is_for():
    r = run("presets")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for name in preset_names():
        line = next(line for line in lines if line.split()[0] == name)
        assert describe_preset(name) in line
    assert "texture" in preset_names() and "base: NAME" in lines[-1]


def test_shell_completion_completes_commands():
    r = run(_NST_COMPLETE="complete_bash", COMP_WORDS="nst pre", COMP_CWORD="1")
    assert r.returncode == 0 and r.stdout.split() == ["presets"], (r.stdout, r.stderr)
    # Typer detects the shell from the process tree (`make` under `sh -c` reads as sh, which it refuses);
    # its own switch for tests takes the shell named on the command line instead
    r = run("--show-completion", "bash", _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    assert r.returncode == 0 and "_NST_COMPLETE" in r.stdout
