"""`python -m pipeline.cli`: the `nst` command without the console script (the SLURM job scripts use it)."""

from pipeline.cli import main

main()
