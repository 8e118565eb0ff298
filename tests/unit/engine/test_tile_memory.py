"""Tiled evaluation keeps memory under a cap the whole image exceeds: peak RSS measured in subprocesses.

Each subprocess loads the real VGG16, resets its peak-RSS counter (/proc/self/clear_refs), runs one
loss-and-gradient evaluation planned by check_fits (whole without a cap; in tiles under --max-memory)
and reports the peak; the figures compared are each evaluation's own peak, the peak RSS over the
RSS before it (the interpreter with torch and the weights is about 0.8 GiB here, whatever the
evaluation). Measured (shared 2-core machine): whole 1.07 GB, tiled 0.18 GB (64 px tiles). Style layers up to block3_conv1 keep the test's cost small on a shared 2-core
machine; those layers hold most of the activation memory (block1 and block2 are at full and half
resolution), so the ratio measured is the one that matters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SIZE = 768
CAP = 320 * 2**20

PROBE = r"""
import json, sys, torch
from pipeline.config import build_config
from pipeline.engine.tile_plan import check_fits
from pipeline.engine.compiled import LossAndGrad
from pipeline.engine.tiles import TiledLossAndGrad
from pipeline.methods.stylize import build_objective
from pipeline.models.vgg import Backbone

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

torch.set_num_threads(1)
size, cap = int(sys.argv[1]), sys.argv[2]
layers = ["block1_conv1", "block2_conv1", "block3_conv1"]
cfg = build_config(overrides={"precision": "fp32", "pooling": "avg", "content_layer": "block3_conv1",
                              "style_layers": layers, "style_weights": [1, 1, 1],
                              "tile": "none" if cap == "none" else "auto",
                              "max_memory": None if cap == "none" else int(cap)})
plan = check_fits("vgg16", [cfg.content_layer, *layers], (size, size), "fp32", cfg.lbfgs_history, 1, "cpu",
                  tile=cfg.tile, max_memory=cfg.max_memory)
bb = Backbone("vgg16", pooling="avg")
gen = torch.Generator().manual_seed(0)
grams = {l: torch.rand(1, c, c, generator=gen) for l, c in zip(layers, (64, 128, 256))}
target = torch.rand(1, 256, size // 4, size // 4, generator=gen)
x = (torch.rand(1, 3, size, size, generator=gen) * 255 - 128).requires_grad_(True)
obj = build_objective(cfg, target, grams)
fn = TiledLossAndGrad(bb.net, obj, "fp32", False, plan.tile) if plan.tile else LossAndGrad(bb.net, obj, "fp32", False)
before = rss("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # peak RSS := current RSS
_, total = fn(x)
print(json.dumps({"tile": plan.tile, "estimate": plan.estimate, "before": before, "peak": rss("VmHWM"),
                  "total": float(total), "grad": float(x.grad.norm())}))
"""


def _probe(cap: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", PROBE, str(SIZE), cap], env=env, capture_output=True, text=True,
                         timeout=1800)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs")
@pytest.mark.slow  # two 768 px evaluations in subprocesses: not in `make test-fast`
def test_tiled_peak_is_at_most_half_the_untiled_peak_and_under_the_cap():
    whole = _probe("none")
    tiled = _probe(str(CAP))
    assert whole["tile"] == 0 and whole["estimate"] > CAP  # the cap is below what the size needs whole
    assert tiled["tile"] > 0 and tiled["estimate"] <= CAP
    assert abs(tiled["total"] - whole["total"]) <= 1e-4 * abs(whole["total"])  # the same evaluation
    assert abs(tiled["grad"] - whole["grad"]) <= 1e-3 * whole["grad"]
    # the evaluation's own peak (over the process's RSS before it: `import torch` alone is ~0.7 GiB here)
    whole_eval, tiled_eval = whole["peak"] - whole["before"], tiled["peak"] - tiled["before"]
    assert tiled_eval <= CAP  # the tiled evaluation finished under the cap
    assert tiled_eval <= 0.5 * whole_eval, (tiled, whole)
    assert tiled["peak"] < whole["peak"]
