"""`python -m pipeline.bench`: the bench without the CLI's other commands (for bare GPU machines)."""

from __future__ import annotations

import sys

from pipeline.bench.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], "python -m pipeline.bench"))
