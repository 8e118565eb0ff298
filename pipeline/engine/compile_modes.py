"""The torch.compile modes a config may name (pipeline.engine.compiled applies them).

A leaf without torch, so the config, and so the planner, can validate the name without
importing torch."""

COMPILE_MODES = ("none", "auto", "default", "reduce-overhead", "max-autotune")
