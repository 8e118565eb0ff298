"""Issue 11's remaining Lever-1 candidates, one image at a time, against the classic bar.

Not part of the package and not a test: the measurement behind docs/speed.md's table
"Starting images, Adam warm-up and per-layer gradient normalisation". It reuses the
bench's definitions (`Workload`, the `default` preset's loss at one scale) and, after
the candidate's own first phase, runs the classic optimiser itself (torch.optim.LBFGS,
lr 1, history 100, no line search, fp32), so a difference is the candidate's alone.

    .venv/bin/python benchmarks/experiments/starts_and_warmups.py --size 128 --img 0 \
        --start blend --alpha 0.5 --normalized 25 --evals 300 --bars /tmp/bars128.json

--bars: a JSON file {"bars": [loss per image]}; when missing, the classic 500-evaluation
run makes it (as `nst bench` does) and writes it there. `nst bench --save` records hold
the same bars under rows[0].losses.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.bench.quality import CLASSIC_HISTORY, classic_path  # noqa: E402
from pipeline.bench.run import ROOT, STYLE, BenchOptions, Workload, _square, load_network  # noqa: E402
from pipeline.config import build_config  # noqa: E402
from pipeline.engine.compiled import LossAndGrad  # noqa: E402


def start_image(kind: str, content: torch.Tensor, style: torch.Tensor, alpha: float) -> torch.Tensor:
    """content | colour (content with the style's per-channel mean and std) | blend (alpha·content + (1-alpha)·style)
    | mean (alpha·content + (1-alpha)·the style's mean colour), all in network space."""
    if kind == "content":
        return content
    if kind == "colour":
        mean, std = content.mean((2, 3), keepdim=True), content.std((2, 3), keepdim=True)
        return (content - mean) / std * style.std((2, 3), keepdim=True) + style.mean((2, 3), keepdim=True)
    if kind == "blend":
        return alpha * content + (1 - alpha) * style
    if kind == "mean":
        return alpha * content + (1 - alpha) * style.mean((2, 3), keepdim=True)
    raise SystemExit(f"unknown --start: {kind!r}")


def normalized_closure(net, objective, x, opt):
    """neural-style's -normalize_gradients: each term's gradient at its own input divided by its L1 norm."""
    def closure():
        opt.zero_grad()
        acts = net(x, objective.layers)
        feats = {k: v.detach().requires_grad_(True) for k, v in acts.items()}
        grads = {k: torch.zeros_like(v) for k, v in feats.items()}
        total, x_grad = 0.0, torch.zeros_like(x)
        for term in objective.terms:
            x_in = x.detach().requires_grad_(True)
            value = term(feats, x_in).sum()
            total = total + value.detach()
            inputs = list(feats.values()) + [x_in]
            for key, g in zip(list(feats) + [None], torch.autograd.grad(value, inputs, allow_unused=True)):
                if g is None:
                    continue
                g = g / (g.abs().sum() + 1e-12)
                if key is None:
                    x_grad += g
                else:
                    grads[key] += g
        torch.autograd.backward([acts[k] for k in acts], [grads[k] for k in acts])
        x.grad += x_grad
        return total
    return closure


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--img", type=int, default=0, help="0: astronaut, 1: coffee")
    ap.add_argument("--evals", type=int, default=300, help="evaluations in all, the first phase's included")
    ap.add_argument("--start", default="content", help="content, colour, blend or mean")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--adam", type=int, default=0, help="Adam evaluations first")
    ap.add_argument("--adam-lr", type=float, default=2.0, help="grey levels")
    ap.add_argument("--normalized", type=int, default=0, help="evaluations with per-term normalised gradients first")
    ap.add_argument("--every", type=int, default=25)
    ap.add_argument("--bars", type=Path, required=True)
    a = ap.parse_args()
    torch.set_num_threads(2)
    cfg = build_config(preset="default", overrides=dict(size=a.size, iterations=500), sets=["coarse_stages=[]"])
    net, pre, _ = load_network(BenchOptions(device="cpu", size=a.size), torch.device("cpu"), cfg.pooling)
    work = Workload(net, pre, cfg, 2, a.size, torch.device("cpu"))
    if not a.bars.exists():
        row, _ = classic_path(work, 2, 500, print)
        a.bars.write_text(json.dumps({"bars": row["losses"]}))
    bar = json.loads(a.bars.read_text())["bars"][a.img]

    i = a.img
    objective = work.objective(i, i + 1)
    style = pre.to_net(_square(ROOT / "examples" / "style" / STYLE, a.size))
    x = start_image(a.start, work.content_net[i:i + 1], style, a.alpha).detach().clone().requires_grad_(True)
    loss_and_grad = LossAndGrad(net, objective, "fp32", False, "none")
    seconds, done = 0.0, 0

    def run(opt, closure, n):
        nonlocal seconds, done
        for _ in range(n):
            t = time.perf_counter()
            opt.step(closure)
            seconds += time.perf_counter() - t
            done += 1
            if done % a.every == 0:
                ratio = work.final_losses(x.detach(), i)[0] / bar
                print(f"{done} {ratio:.4f} t={seconds:.0f}s", flush=True)

    def plain(opt):
        def closure():
            opt.zero_grad()
            return loss_and_grad(x)[1]
        return closure

    if a.adam:
        adam = torch.optim.Adam([x], lr=a.adam_lr * pre.unit)
        run(adam, plain(adam), a.adam)
    lbfgs = dict(lr=1, max_iter=1, history_size=CLASSIC_HISTORY, line_search_fn=None,
                 tolerance_grad=-1, tolerance_change=-1)
    if a.normalized:
        warm = torch.optim.LBFGS([x], **lbfgs)
        run(warm, normalized_closure(net, objective, x, warm), a.normalized)
    classic = torch.optim.LBFGS([x], **lbfgs)  # a fresh history: the warm-up's pairs are of another field
    run(classic, plain(classic), a.evals - done)


if __name__ == "__main__":
    main()
