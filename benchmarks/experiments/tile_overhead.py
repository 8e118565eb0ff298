"""What tiling costs against a whole-image evaluation where both fit (docs/tiling.md).

For each (size, tile): CPU seconds of one loss-and-gradient evaluation, whole and in tiles
(median of `--repeat`, after one warm-up each), the ratio, the geometric cost ratio (pixels the
network runs: every crop once without gradients and once with, over the whole image once with)
and the tiled loss's relative error. CPU time (not wall time) because the machine is shared.

    PYTHONPATH=. nice -n 5 .venv/bin/python benchmarks/experiments/tile_overhead.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pipeline.config import build_config
from pipeline.engine.compiled import LossAndGrad
from pipeline.engine.tiles import TiledLossAndGrad
from pipeline.methods.stylize import build_objective
from pipeline.models.vgg import Backbone


def cpu_seconds(fn, x, repeat):
    out = []
    for i in range(repeat + 1):
        x.grad = None
        t = time.process_time()
        _, total = fn(x)
        if i:
            out.append(time.process_time() - t)
    return statistics.median(out), float(total)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="512:256,512:128,768:384")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = build_config(overrides={"precision": a.precision, "pooling": "avg", "loss_reduction": "mean"})
    bb = Backbone("vgg16", pooling="avg")
    cl = a.precision == "bf16"
    print("| size | tile | tiles | whole s | tiled s | ratio | expected ratio | loss rel. error |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for case in a.cases.split(","):
        size, tile = map(int, case.split(":"))
        gen = torch.Generator().manual_seed(0)
        grams = {l: torch.rand(1, c, c, generator=gen) * 1e3 for l, c in zip(cfg.style_layers, (64, 128, 256, 512, 512))}
        target = torch.rand(1, 512, size // 8, size // 8, generator=gen)
        x = (torch.rand(1, 3, size, size, generator=gen) * 255 - 128).requires_grad_(True)
        whole_s, whole_loss = cpu_seconds(LossAndGrad(bb.net, build_objective(cfg, target, grams), a.precision, cl),
                                          x, a.repeat)
        tiled = TiledLossAndGrad(bb.net, build_objective(cfg, target, grams), a.precision, cl, tile)
        tiled_s, tiled_loss = cpu_seconds(tiled, x, a.repeat)
        grid = tiled.grid(x)
        crops = sum((t.cy1 - t.cy0) * (t.cx1 - t.cx0) for t in grid)
        # a forward is about 1/3 of a forward+backward: pass 1 costs crops/3, pass 2 crops
        cost_ratio = (crops / 3 + crops) / (size * size)
        print(f"| {size} | {tiled.tile} | {len(grid)} | {whole_s:.2f} | {tiled_s:.2f} | {tiled_s / whole_s:.2f} | "
              f"{cost_ratio:.2f} | {abs(tiled_loss - whole_loss) / abs(whole_loss):.1e} |", flush=True)


if __name__ == "__main__":
    main()
