"""The bench's one option definition, shared by `nst bench` and `python -m pipeline.bench`.

argparse, not Typer, so `python -m pipeline.bench` runs on bare GPU machines with only
torch, numpy, pillow and pyyaml (benchmarks/gpu.sh); `nst bench` hands its arguments here.
The options become one `BenchOptions` (pipeline.bench.run), which validates them.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from pipeline.bench.args import OneLineParser, compile_list, int_list, precision_list
from pipeline.errors import NSTError


def parser(prog: str) -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description="The classic run (the quality bar) against the production path: "
                                       "evaluations and images per hour to that quality; prints the table, "
                                       "writes BENCHMARKS.md.")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--size", type=int, default=256, help="Image side in pixels (square)")
    p.add_argument("--iterations", type=int, default=None,
                   help="Production evaluations per image over every stage (default: the preset's); "
                        "the rows stop at the bar")
    p.add_argument("--classic-evaluations", type=int, default=500,
                   help="Evaluations of the classic run whose final losses are the quality bar")
    p.add_argument("--preset", "--config", default="default",
                   help="Preset or YAML file: loss, start, schedule and optimiser of every path")
    p.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE",
                   help="On top of the preset (repeatable)")
    p.add_argument("--batch-size", default="2", help="Production batch size, or a comma list (1,4,8)")
    p.add_argument("--precision", default="auto", help="fp32, bf16 or auto, or a comma list (fp32,bf16)")
    p.add_argument("--reference-images", type=int, default=None,
                   help="Images of the classic row (default: largest batch)")
    p.add_argument("--random-weights", action="store_true", help="Same-shape random weights: timing only")
    p.add_argument("--weights-file", default=None, help="A VGG16 state-dict file (e.g. an fp16 copy)")
    p.add_argument("--memory-sizes", default=None, help="Also measure one-image peak memory at these sizes")
    p.add_argument("--single-scale-row", action="store_true",
                   help="Also run the schedule's FLOP budget at full size only (what the schedule buys)")
    p.add_argument("--wolfe-row", action="store_true", help="Also run torch.optim.LBFGS with its strong-Wolfe "
                   "line search (one image at a time, whole network)")
    p.add_argument("--adam-row", action="store_true", help="Also run the largest batch with Adam (the network's share)")
    p.add_argument("--history", type=int, default=None, help="L-BFGS history of the production path "
                   "(default: the preset's); the classic run keeps torch's 100")
    p.add_argument("--compile", default=None, help="Also run the production row under torch.compile modes: "
                   "default, reduce-overhead (CUDA graphs), max-autotune (comma list)")
    p.add_argument("--profile", default=None, help="Also print a torch.profiler kernel table of one production "
                   "evaluation at each of these batch sizes (comma list)")
    p.add_argument("--classic-jitter", type=float, default=0.0, metavar="GREY_LEVELS",
                   help="Also run the classic row from its start plus seeded noise of this standard deviation "
                        "(grey levels): the bar's own spread, and when production gets within it")
    p.add_argument("--check-every", type=int, default=5,
                   help="Check every sample's fp32 loss against the bar every this many full-size evaluations")
    p.add_argument("--images", default=None, help="Write content | classic | production-at-the-bar pictures here")
    p.add_argument("--save", default=None, help="Write the JSON record here (e.g. benchmarks/results/cpu.json)")
    p.add_argument("--markdown", default=None,
                   help="Then re-render this file (BENCHMARKS.md) from the records beside --save")
    p.add_argument("--look", action="store_true", help="The look table instead: sizes x pairs x {structure, "
                   "style match, seconds} on the ruler of `nst look` (`nst bench --look --help`)")
    return p


def execute(argv: list[str], prog: str) -> dict:
    """Parse and validate, run, print the table, save the JSON record and re-render BENCHMARKS.md."""
    from pathlib import Path

    from pipeline.bench.report import render_benchmarks, save_result, text_table
    from pipeline.bench.run import BenchOptions, run_bench

    a = parser(prog).parse_args(argv)
    opts = BenchOptions(
        device=a.device, size=a.size, iterations=a.iterations, batch_sizes=int_list("batch-size", a.batch_size),
        precisions=precision_list(a.precision), reference_images=a.reference_images,
        random_weights=a.random_weights, weights_file=a.weights_file,
        memory_sizes=int_list("memory-sizes", a.memory_sizes) if a.memory_sizes else [],
        adam_row=a.adam_row, history=a.history, command=" ".join([prog, *(shlex.quote(v) for v in argv)]),
        compile_modes=compile_list(a.compile), profile_batches=int_list("profile", a.profile) if a.profile else [],
        classic_evaluations=a.classic_evaluations, preset=a.preset, sets=list(a.sets),
        single_scale_row=a.single_scale_row, wolfe_row=a.wolfe_row, check_every=a.check_every, images=a.images,
        classic_jitter=a.classic_jitter,
    )
    result = run_bench(opts, progress=lambda msg: print(msg, file=sys.stderr, flush=True),
                       checkpoint=(lambda rec: save_result(rec, a.save)) if a.save else None)
    print(text_table(result), flush=True)
    if a.save:
        save_result(result, a.save)
        if a.markdown:
            render_benchmarks(Path(a.save).parent, a.markdown)
    return result


def main(argv: list[str], prog: str) -> int:
    """Run the bench; a bad option is one line on stderr and exit status 2. (`--look` runs
    pipeline.bench.look.main instead: the callers, `nst bench` and `python -m pipeline.bench`, send it there.)"""
    try:
        execute(argv, prog)
    except NSTError as exc:
        print(f"nst: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
