"""SLURM support: the job environment (env), stop-and-requeue (requeue), sbatch submission (submit)."""
