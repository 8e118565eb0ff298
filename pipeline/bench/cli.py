"""What `nst bench` and `python -m pipeline.bench` share: option checks and the run-print-save step."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.errors import BadInput


def int_list(name: str, raw: str) -> list[int]:
    try:
        values = [int(v) for v in str(raw).split(",") if v.strip()]
    except ValueError:
        raise BadInput(f"{name} must be a positive integer or a comma list of them, got {raw!r}")
    if not values or any(v <= 0 for v in values):
        raise BadInput(f"{name} must be a positive integer or a comma list of them, got {raw!r}")
    return values


def precision_list(raw: str) -> list[str]:
    values = [v.strip() for v in str(raw).split(",") if v.strip()]
    bad = [v for v in values if v not in ("fp32", "bf16", "auto")]
    if not values or bad:
        raise BadInput(f"precision must be fp32, bf16 or auto (or a comma list), got {raw!r}")
    return values


def compile_list(raw: str | None) -> list[str]:
    from pipeline.engine.compiled import COMPILE_MODES

    values = [v.strip() for v in str(raw or "").split(",") if v.strip()]
    bad = [v for v in values if v not in COMPILE_MODES or v in ("none", "auto")]
    if bad:
        raise BadInput(f"compile must be default, reduce-overhead or max-autotune (or a comma list), got {raw!r}")
    return values


def execute(device: str, size: int, iterations: int, batch_size: str, precision: str,
            reference_images: int | None, random_weights: bool, weights_file: str | None,
            memory_sizes: str | None, coarse_to_fine: bool, adam_row: bool, history: int,
            save: str | None, markdown: str | None, command: str, compile_modes: str | None = None,
            profile: bool = False, pooling: str = "max", coarse_budget: float = 1.2,
            quality_points: int = 10) -> dict:
    """Validate, run, print the table, save the JSON record and re-render BENCHMARKS.md."""
    import torch

    from pipeline.bench.report import render_benchmarks, save_result, text_table
    from pipeline.bench.run import BenchOptions, run_bench

    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise BadInput(f"device must be cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"device {device!r} requested but CUDA is not available")
    for name, value in (("size", size), ("iterations", iterations), ("history", history)):
        if value <= 0:
            raise BadInput(f"{name} must be a positive integer, got {value!r}")
    if size < 32:
        raise BadInput(f"size must be at least 32 px (VGG16 pools five times), got {size}")
    if not coarse_budget > 0:
        raise BadInput(f"coarse-budget must be > 0, got {coarse_budget!r}")
    if quality_points < 0:
        raise BadInput(f"quality-points must be 0 (off) or a positive integer, got {quality_points!r}")
    if pooling not in ("max", "avg"):
        raise BadInput(f"pooling must be max or avg, got {pooling!r}")
    if weights_file and not Path(weights_file).is_file():
        raise BadInput(f"weights file not found: {weights_file}")
    opts = BenchOptions(
        device=device, size=size, iterations=iterations, batch_sizes=int_list("batch-size", batch_size),
        precisions=precision_list(precision), reference_images=reference_images,
        random_weights=random_weights, weights_file=weights_file,
        memory_sizes=int_list("memory-sizes", memory_sizes) if memory_sizes else [],
        coarse_to_fine=coarse_to_fine, adam_row=adam_row, history=history, command=command,
        compile_modes=compile_list(compile_modes), profile=profile, pooling=pooling, coarse_budget=coarse_budget,
        quality_points=quality_points,
    )
    result = run_bench(opts, progress=lambda msg: print(msg, file=sys.stderr, flush=True),
                       checkpoint=(lambda rec: save_result(rec, save)) if save else None)
    print(text_table(result), flush=True)
    if save:
        save_result(result, save)
        if markdown:
            render_benchmarks(Path(save).parent, markdown)
    return result
