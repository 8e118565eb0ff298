"""The project as a user installs it: a built wheel in a fresh venv, run from an unrelated folder.

The heavy dependencies (torch, Lightning, ...) are not downloaded again: the fresh
venv sees this environment's site-packages through a .pth file, while the wheel
itself is installed with --no-index --no-deps. The run must import the installed
copy (checked through pipeline.__file__), not this checkout, and find the presets
and job scripts inside the package.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ROOT, make_image


SKIP = shutil.ignore_patterns(".git", ".venv", "runs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                              ".whl", ".carry")


def _run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _fresh_venv(where: Path, what) -> tuple[Path, dict, Path]:
    """(bin folder, environment, site-packages) of a new venv where `what` (a wheel or a source
    folder) is installed without its dependencies; those come from this environment through a .pth."""
    venv.create(where, with_pip=False, symlinks=True)
    bin_dir = where / "bin"
    purelib = Path(_run([bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
                        ).stdout.strip())
    (purelib / "shared_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")  # torch & co., no download
    _run([sys.executable, "-m", "pip", "--python", bin_dir / "python", "install", "-q", "--no-index", "--no-deps",
          "--no-build-isolation", what])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", PATH=f"{bin_dir}{os.pathsep}{env['PATH']}")
    return bin_dir, env, purelib


def _source_copy(tmp: Path) -> Path:
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=SKIP, symlinks=True)
    return src


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder, environment, site-packages) of a venv holding only the freshly built wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist,
          _source_copy(tmp)])
    return _fresh_venv(tmp / "venv", next(dist.glob("nst_pipeline-*.whl")))


def test_pip_install_of_the_source_folder_works_too(tmp_path):
    bin_dir, env, purelib = _fresh_venv(tmp_path / "venv", _source_copy(tmp_path))  # `pip install .`, not -e
    out = _run([bin_dir / "python", "-c", "import pipeline; print(pipeline.__file__)"], env=env, cwd=tmp_path)
    assert out.stdout.strip() == str(purelib / "pipeline" / "__init__.py")
    r = _run([bin_dir / "nst", "presets"], env=env, cwd=tmp_path)
    assert r.stdout.split()[0] == "default" and str(purelib / "pipeline" / "configs") in r.stdout


def test_wheel_carries_presets_and_job_scripts(installed):
    bin_dir, env, purelib = installed
    code = ("import pipeline; from pipeline.resources import data_dir; "
            "print(pipeline.__file__); print(data_dir('configs')); print(data_dir('slurm'))")
    out = _run([bin_dir / "python", "-c", code], env=env, cwd=purelib.parent).stdout.split()
    assert out[0] == str(purelib / "pipeline" / "__init__.py")  # the installed copy, not the checkout
    assert out[1] == str(purelib / "pipeline" / "configs")
    assert (Path(out[1]) / "default.yaml").is_file() and (Path(out[2]) / "array.sbatch").is_file()
    assert (Path(out[2]) / "nodes.sbatch").is_file()


def test_installed_nst_one_and_stylize_from_any_folder(installed, tmp_path):
    bin_dir, env, _ = installed
    work = tmp_path / "elsewhere"
    (work / "photos").mkdir(parents=True)
    make_image((48, 40), 0, "content").save(work / "photos" / "a.png")
    make_image((40, 48), 2, "content").save(work / "photos" / "b.png")
    make_image((40, 40), 1, "style").save(work / "style.png")
    nst = bin_dir / "nst"
    r = _run([nst, "one", "photos/a.png", "style.png", "-o", "one.png", "--size", 32, "--iterations", 3], env=env,
             cwd=work)
    assert Image.open(work / "one.png").size == (32, 27), r.stderr
    r = _run([nst, "stylize", "photos", "--style", "style.png", "--out", "run", "--size", 32, "--iterations", 3,
              "--no-progress"], env=env, cwd=work)
    with tarfile.open(next((work / "run" / "shards").glob("*.tar"))) as tf:
        assert sum(name.endswith(".png") for name in tf.getnames()) == 2
    _run([nst, "verify", "run"], env=env, cwd=work)


def test_installed_submit_uses_the_packaged_job_script(installed, tmp_path):
    bin_dir, env, purelib = installed
    (tmp_path / "photos").mkdir()
    make_image((48, 40), 0, "content").save(tmp_path / "photos" / "a.png")
    make_image((40, 40), 1, "style").save(tmp_path / "style.png")
    r = _run([bin_dir / "nst", "submit", "photos", "--style", "style.png", "--out", "run", "--array", 2, "--dry-run",
              "--size", 32], env=env, cwd=tmp_path)
    assert str(purelib / "pipeline" / "slurm_jobs" / "array.sbatch") in r.stdout, r.stdout
    assert (tmp_path / "run" / "run.json").is_file()
