"""The engine options a config may name: torch.compile modes (applied by
pipeline.engine.compiled) and loss reductions (pipeline.engine.objectives).

A leaf without torch, so the config, and so the planner, can validate them without
importing torch."""

COMPILE_MODES = ("none", "auto", "default", "reduce-overhead", "max-autotune")
REDUCTIONS = ("sum", "mean")  # "mean": every loss term divided by its element count (size-normalised)
