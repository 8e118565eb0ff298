"""Where the bundled files are read from: presets, SLURM job scripts, example pictures, benchmark records.

They live in the top-level `configs/`, `slurm/`, `examples/` and `benchmarks/results/` folders of the repository, where
users look for them; setup.py maps those folders into the package (as
pipeline/configs and pipeline/slurm_jobs), so a wheel carries them and
`importlib.resources` finds them next to the installed code. A source checkout
(PYTHONPATH or an editable install) has no such subfolders and reads the
top-level folders directly.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGED = {"configs": "configs", "slurm": "slurm_jobs", "examples": "examples",  # top-level folder ->
            "benchmarks/results": "bench_results"}                                # folder inside the package
CHECKOUT = Path(__file__).resolve().parent.parent


def data_dir(folder: str) -> Path:
    """The directory holding `folder`'s files (a key of PACKAGED), as a real path (sbatch needs one)."""
    packaged = resources.files("pipeline").joinpath(PACKAGED[folder])
    if packaged.is_dir():
        return Path(str(packaged))
    return CHECKOUT / folder
