"""Maps the top-level configs/ and slurm/ folders into the package (pipeline/configs,
pipeline/slurm_jobs) so a wheel carries the presets and job scripts; pyproject.toml
has everything else. pipeline/resources.py reads them back."""

from setuptools import find_packages, setup

DATA = {"pipeline.configs": ("configs", ["*.yaml"]), "pipeline.slurm_jobs": ("slurm", ["*.sbatch", "README.md"])}

setup(
    packages=find_packages(include=["pipeline", "pipeline.*"]) + list(DATA),
    package_dir={name: folder for name, (folder, _globs) in DATA.items()},
    package_data={name: globs for name, (_folder, globs) in DATA.items()},
)
