"""Maps the top-level configs/, slurm/, examples/ and benchmarks/results/ folders into the package
(pipeline/configs, pipeline/slurm_jobs, pipeline/examples, pipeline/bench_results) so a wheel carries the
presets, job scripts, bundled pictures (probes, bench) and benchmark records (the cost estimate);
pyproject.toml has everything else. pipeline/resources.py reads them back."""

from setuptools import find_packages, setup

DATA = {"pipeline.configs": ("configs", ["*.yaml"]), "pipeline.slurm_jobs": ("slurm", ["*.sbatch", "README.md"]),
        "pipeline.examples": ("examples", ["NOTICE.md", "content/*.jpg", "style/*.jpg", "video/*.mp4"]),
        "pipeline.bench_results": ("benchmarks/results", ["*.json"])}

setup(
    packages=find_packages(include=["pipeline", "pipeline.*"]) + list(DATA),
    package_dir={name: folder for name, (folder, _globs) in DATA.items()},
    package_data={name: globs for name, (_folder, globs) in DATA.items()},
)
