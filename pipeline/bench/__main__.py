"""`python -m pipeline.bench`: the bench without the CLI's other commands (for bare GPU machines)."""

from __future__ import annotations

import sys

from pipeline.bench.cli import main
from pipeline.bench.look import main as look_main

if __name__ == "__main__":
    sys.exit((look_main if "--look" in sys.argv[1:] else main)(sys.argv[1:], "python -m pipeline.bench"))
