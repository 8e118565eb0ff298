"""Where the presets and the SLURM job scripts are read from.

They live in the top-level `configs/` and `slurm/` folders of the repository, where
users look for them; setup.py maps those folders into the package (as
pipeline/configs and pipeline/slurm_jobs), so a wheel carries them and
`importlib.resources` finds them next to the installed code. A source checkout
(PYTHONPATH or an editable install) has no such subfolders and reads the
top-level folders directly.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGED = {"configs": "configs", "slurm": "slurm_jobs"}  # top-level folder -> folder inside the package
CHECKOUT = Path(__file__).resolve().parent.parent


def data_dir(folder: str) -> Path:
    """The directory holding `folder`'s files ('configs' or 'slurm'), as a real path (sbatch needs one)."""
    packaged = resources.files("pipeline").joinpath(PACKAGED[folder])
    if packaged.is_dir():
        return Path(str(packaged))
    return CHECKOUT / folder
