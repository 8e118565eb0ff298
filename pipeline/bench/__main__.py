"""`python -m pipeline.bench`: the bench without the CLI's other commands (for bare GPU machines)."""

from __future__ import annotations

import argparse
import shlex
import sys

from pipeline.bench.cli import execute
from pipeline.errors import NSTError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--batch-size", default="4")
    p.add_argument("--precision", default="auto")
    p.add_argument("--reference-images", type=int, default=None)
    p.add_argument("--random-weights", action="store_true")
    p.add_argument("--weights-file", default=None)
    p.add_argument("--memory-sizes", default=None)
    p.add_argument("--coarse-to-fine", action="store_true")
    p.add_argument("--adam-row", action="store_true")
    p.add_argument("--history", type=int, default=20)
    p.add_argument("--compile", default=None)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--pooling", default="max")
    p.add_argument("--coarse-budget", type=float, default=1.2)
    p.add_argument("--quality-points", type=int, default=10)
    p.add_argument("--save", default=None)
    p.add_argument("--markdown", default=None)
    args = p.parse_args(argv)
    command = "python -m pipeline.bench " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    try:
        execute(args.device, args.size, args.iterations, args.batch_size, args.precision,
                args.reference_images, args.random_weights, args.weights_file, args.memory_sizes,
                args.coarse_to_fine, args.adam_row, args.history, args.save, args.markdown, command,
                compile_modes=args.compile, profile=args.profile, pooling=args.pooling,
                coarse_budget=args.coarse_budget, quality_points=args.quality_points)
    except NSTError as exc:
        print(f"nst: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
