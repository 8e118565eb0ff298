"""The benchmark itself: one fixed workload, the reference path and the production path.

Reference: one image at a time, fp32, NCHW, `torch.optim.LBFGS` (strong-Wolfe, the
engine's 'torch_lbfgs'), the whole VGG16 forward through block5_pool.
Production: the engine as the pipeline runs it: `render` with the per-sample
batched L-BFGS, the network stopped at the deepest layer a loss reads, a batch of
B images per forward/backward, bf16 autocast + channels_last where selected,
no host synchronisation inside the loop except at the progress interval.
Both paths optimise the same objective (the default StyleConfig) from the same
seeded noise; final losses are re-evaluated for both in fp32.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from pipeline.bench.flops import deepest, flops_per_evaluation
from pipeline.config import StyleConfig, build_config
from pipeline.engine.loop import RenderOptions, evaluate, logging_step, render
from pipeline.engine.objectives import gram
from pipeline.engine.optim import make_optimizer
from pipeline.engine.precision import resolve_precision
from pipeline.errors import BadInput
from pipeline.models.layers import layer_sequence
from pipeline.models.preprocess import Preprocess
from pipeline.models.vgg import VGGFeatures

ROOT = Path(__file__).resolve().parent.parent.parent
CONTENTS = ["astronaut.jpg", "coffee.jpg", "rocket.jpg"]
STYLE = "great_wave_of_kanagawa.jpg"
FULL_NET_LAYER = "block5_pool"


REFERENCE_HISTORY = 100  # torch.optim.LBFGS's default history_size: the plain reference


@dataclass
class BenchOptions:
    device: str = "cpu"
    size: int = 128
    iterations: int = 50
    batch_sizes: list[int] = field(default_factory=lambda: [4])
    precisions: list[str] = field(default_factory=lambda: ["auto"])
    reference_images: int | None = None     # default: the largest batch size
    random_weights: bool = False
    weights_file: str | None = None
    memory_sizes: list[int] = field(default_factory=list)
    coarse_to_fine: bool = False
    coarse_budget: float = 1.2              # c2f evaluations per production evaluation (the default preset: 360/300)
    adam_row: bool = False
    compile_modes: list[str] = field(default_factory=list)  # extra production rows under torch.compile
    profile: bool = False                   # a torch.profiler table of a few production evaluations
    pooling: str = "max"                    # both paths (the classic workload uses max pooling)
    quality_points: int = 10                # fp32 losses at this many points of each production run
    history: int = 20                       # production path
    reference_history: int = REFERENCE_HISTORY
    command: str = ""

    def __post_init__(self):
        dev = self.device
        if dev not in ("cpu", "cuda") and not dev.startswith("cuda:"):
            raise BadInput(f"device must be cpu or cuda, got {dev!r}")
        if dev.startswith("cuda") and not torch.cuda.is_available():
            raise BadInput(f"device {dev!r} requested but CUDA is not available")
        for name, value in (("size", self.size), ("iterations", self.iterations), ("history", self.history)):
            if value <= 0:
                raise BadInput(f"{name} must be a positive integer, got {value!r}")
        if self.size < 32:
            raise BadInput(f"size must be at least 32 px (VGG16 pools five times), got {self.size}")
        if not self.coarse_budget > 0:
            raise BadInput(f"coarse-budget must be > 0, got {self.coarse_budget!r}")
        if self.quality_points < 0:
            raise BadInput(f"quality-points must be 0 (off) or a positive integer, got {self.quality_points!r}")
        if self.pooling not in ("max", "avg"):
            raise BadInput(f"pooling must be max or avg, got {self.pooling!r}")
        if self.weights_file and not Path(self.weights_file).is_file():
            raise BadInput(f"weights file not found: {self.weights_file}")


# ------------------------------------------------------------------ setup

def load_network(opts: BenchOptions, device: torch.device) -> tuple[VGGFeatures, Preprocess, str]:
    """The Keras VGG16 (cache, or a state-dict file), or same-shape random weights for timing only."""
    pre = Preprocess("caffe")
    if opts.random_weights:
        gen = torch.Generator().manual_seed(0)
        state = {}
        cin = 3
        for kind, name in layer_sequence("vgg16"):
            if kind == "conv":
                cout = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}[int(name[5])]
                std = (2.0 / (cin * 9)) ** 0.5
                state[f"{name}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * std
                state[f"{name}.bias"] = torch.zeros(cout)
                cin = cout
        label = "random (same shapes; timing only)"
    elif opts.weights_file:
        state = {k: v.float() for k, v in torch.load(opts.weights_file, map_location="cpu",
                                                      weights_only=True).items()}
        label = f"Keras VGG16 from {Path(opts.weights_file).name}"
    else:
        from pipeline.models.weights import load_backbone_state

        state, _ = load_backbone_state("vgg16")
        label = "Keras VGG16 (ImageNet)"
    return VGGFeatures("vgg16", state, opts.pooling).to(device), pre, label


def _square(path: Path, size: int) -> torch.Tensor:
    from PIL import Image

    img = Image.open(path).convert("RGB")
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
    return torch.from_numpy(__import__("numpy").asarray(img, dtype="float32")).permute(2, 0, 1)[None]


class Workload:
    """n contents (the example photos, cycled) with one style, all size×size; per-sample seeds."""

    def __init__(self, net, pre, cfg: StyleConfig, n: int, size: int, device):
        self.net, self.pre, self.cfg, self.size, self.device = net, pre, cfg, size, device
        contents = [_square(ROOT / "examples" / "content" / CONTENTS[i % len(CONTENTS)], size) for i in range(n)]
        self.content_net = pre.to_net(torch.cat(contents).to(device))
        style_net = pre.to_net(_square(ROOT / "examples" / "style" / STYLE, size).to(device))
        with torch.no_grad():
            acts = net(style_net, cfg.style_layers)
            self.grams = {layer: gram(acts[layer]) for layer in cfg.style_layers}
            self.content_acts = net(self.content_net, [cfg.content_layer])[cfg.content_layer].float()
        self.noise = torch.cat([pre.noise((1, 3, size, size), torch.Generator().manual_seed(i))
                                for i in range(n)]).to(device)

    def objective(self, lo: int, hi: int):
        from pipeline.methods.stylize import build_objective

        return build_objective(self.cfg, self.content_acts[lo:hi], self.grams)

    def final_losses(self, x: torch.Tensor, lo: int) -> list[float]:
        """Total loss per sample at x, evaluated in fp32 on the same objective for both paths."""
        parts = evaluate(self.net, self.objective(lo, lo + x.shape[0]), x, "fp32")
        return [float(v) for v in sum(parts.values()).cpu()]


# --------------------------------------------------------------- measuring

def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:  # resets VmHWM (Linux >= 4.0) so the peak is this path's
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass


def _peak_mib(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def matmul_tflops(device: torch.device, dtype=torch.bfloat16, windows: int = 3) -> float:
    """Measured dense matmul rate on this device (the ceiling the targets refer to).

    The best of `windows` timed windows of about 0.5 s each: a ceiling, so a window
    slowed by another process on a shared host (seen: 0.78 against 1.37 TFLOP/s on
    the 2-core CPU) does not make every row look closer to it.
    """
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    best = 0.0
    for _ in range(windows):
        reps, start = 0, time.perf_counter()
        while True:
            for _ in range(10):
                a @ b
            reps += 10
            _sync(device)
            elapsed = time.perf_counter() - start
            if elapsed > 0.5:
                break
        best = max(best, 2 * n ** 3 * reps / elapsed / 1e12)
    return best


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from pipeline.bench.report import cpu_model

    return f"{cpu_model()}, {torch.get_num_threads()} threads"


# ------------------------------------------------------------------ paths

def reference_path(work: Workload, n: int, iterations: int, history: int, progress) -> dict:
    """One image at a time, fp32, NCHW, torch.optim.LBFGS, whole VGG16 forward."""
    net, dev = work.net, work.device
    layers = None
    outs = []
    evals_total = 0
    _reset_peak(dev)
    _sync(dev)
    start = time.perf_counter()
    for i in range(n):
        objective = work.objective(i, i + 1)
        layers = list(objective.layers) + [FULL_NET_LAYER]
        x = work.noise[i:i + 1].clone().requires_grad_(True)
        opt = make_optimizer("torch_lbfgs", x, lr=work.cfg.learning_rate, history=history)
        evals = 0

        def closure():
            nonlocal evals
            evals += 1
            opt.zero_grad()
            loss = objective(net(x, layers), x).sum()
            loss.backward()
            return loss

        while evals < iterations:
            opt.step(closure)
        evals_total += evals
        outs.append(x.detach())
        progress(f"reference image {i + 1}/{n}: {evals} evaluations")
    _sync(dev)
    seconds = time.perf_counter() - start
    x = torch.cat(outs)
    return dict(path="reference", precision="fp32", batch=1, images=n, evaluations=evals_total,
                seconds=seconds, peak_mib=_peak_mib(dev), losses=work.final_losses(x, 0),
                forward_to=FULL_NET_LAYER, backward_to=deepest(net, objective.layers))


def production_path(work: Workload, batch: int, precision: str, iterations: int, history: int,
                    progress, x0: torch.Tensor | None = None, with_losses: bool = True,
                    optimizer: str = "lbfgs", compile: str = "none",
                    quality_points: int = 0) -> tuple[dict, torch.Tensor]:
    """The engine's render: batched per-sample L-BFGS, truncated net, chosen precision.

    quality_points > 0 keeps a device copy of the images at that many points of the
    run (no host synchronisation) and, after the timing, evaluates each in fp32: the
    row's `curve`, from which `_ratios` finds when production reaches the
    reference's final loss.
    """
    dev = work.device
    objective = work.objective(0, batch)
    x0 = work.noise[:batch] if x0 is None else x0
    every = max(1, iterations // 5)
    snapshots: list[tuple[int, torch.Tensor]] = []

    def on_log(i, total, rows):
        progress(f"production {precision} batch {batch}: {i}/{total} evaluations")

    def on_snapshot(evals, x):
        snapshots.append((evals, x.clone()))

    _reset_peak(dev)
    _sync(dev)
    start = time.perf_counter()
    options = RenderOptions(iterations, optimizer=optimizer, lr=work.cfg.learning_rate, history=history,
                            precision=precision, log_every=every, max_step=work.cfg.lbfgs_max_step * work.pre.unit,
                            compile=compile,
                            snapshot_every=max(1, iterations // quality_points) if quality_points else 0)
    result = render(work.net, objective, x0, options, logging_step(on_log, on_snapshot if quality_points else None))
    _sync(dev)
    seconds = time.perf_counter() - start
    peak = _peak_mib(dev)
    losses = work.final_losses(result.x, 0) if with_losses else []
    curve = [[evals, work.final_losses(x, 0)] for evals, x in snapshots]
    snapshots.clear()
    label = [optimizer] if optimizer != "lbfgs" else []
    label += [f"compile {result.compiled}"] if compile != "none" else []
    path = "production" + (f" ({', '.join(label)})" if label else "")
    return dict(path=path, precision=precision, batch=batch, images=batch,
                evaluations=result.evaluations * batch, seconds=seconds, peak_mib=peak, losses=losses,
                forward_to=deepest(work.net, objective.layers),
                backward_to=deepest(work.net, objective.layers),
                **({"curve": curve + [[result.evaluations, losses]]} if quality_points and losses else {})), result.x


def coarse_to_fine_path(work: Workload, half: Workload, batch: int, precision: str, iterations: int,
                        history: int, progress, budget: float = 1.0) -> dict:
    """The production schedule (`coarse_fraction` 0.5): round(budget·iterations) evaluations,
    the first half at half size, the rest at full size from the upsampled result."""
    total = max(2, round(iterations * budget))
    coarse_iters = total // 2
    fine_iters = total - coarse_iters
    dev = work.device
    _sync(dev)
    start = time.perf_counter()
    row_c, xc = production_path(half, batch, precision, coarse_iters, history, progress, with_losses=False)
    x0 = F.interpolate(xc, size=(work.size, work.size), mode="bilinear", align_corners=False)
    row_f, xf = production_path(work, batch, precision, fine_iters, history, progress, x0=x0, with_losses=False)
    _sync(dev)
    seconds = time.perf_counter() - start
    flops = (flops_per_evaluation(work.net, row_c["forward_to"], row_c["backward_to"], half.size, half.size)
             * coarse_iters + flops_per_evaluation(work.net, row_f["forward_to"], row_f["backward_to"],
                                                   work.size, work.size) * fine_iters) / total
    row = dict(row_f, path="coarse-to-fine", evaluations=total * batch, seconds=seconds,
               peak_mib=max(row_c["peak_mib"], row_f["peak_mib"]), losses=work.final_losses(xf, 0),
               flops_per_eval=int(flops))
    return row


def memory_rows(net, pre, cfg, sizes: list[int], precision: str, history: int, device, progress) -> list[dict]:
    """Peak memory of the production path for one image at each size (3 evaluations each)."""
    rows = []
    for size in sizes:
        try:
            work = Workload(net, pre, cfg, 1, size, device)
            row, _ = production_path(work, 1, precision, 3, history, progress, with_losses=False)
            rows.append(dict(size=size, peak_mib=row["peak_mib"], status="ok"))
        except torch.OutOfMemoryError:
            rows.append(dict(size=size, peak_mib=None, status="out of memory"))
        finally:
            work = None
            if device.type == "cuda":
                torch.cuda.empty_cache()
        progress(f"memory at {size}px: {rows[-1]['status']}")
    ok = [r for r in rows if r["status"] == "ok"]
    if device.type == "cuda" and len(ok) >= 2:
        (s1, m1), (s2, m2) = [(r["size"], r["peak_mib"]) for r in ok[-2:]]
        per_px = (m2 - m1) / (s2 * s2 - s1 * s1)
        base = m1 - per_px * s1 * s1
        total = torch.cuda.get_device_properties(device).total_memory / 2**20
        guess = int(((0.92 * total - base) / per_px) ** 0.5) // 64 * 64
        for size in (guess, guess - 256):
            try:
                work = Workload(net, pre, cfg, 1, size, device)
                row, _ = production_path(work, 1, precision, 3, history, progress, with_losses=False)
                rows.append(dict(size=size, peak_mib=row["peak_mib"], status="largest tried that fits"))
                break
            except torch.OutOfMemoryError:
                rows.append(dict(size=size, peak_mib=None, status="out of memory"))
            finally:
                work = None
                torch.cuda.empty_cache()
    return rows


# --------------------------------------------------------------- the run

def _finish(row: dict, net, size: int, matmul: float) -> dict:
    if "flops_per_eval" not in row:
        row["flops_per_eval"] = flops_per_evaluation(net, row["forward_to"], row["backward_to"], size, size)
    row["seconds_per_image"] = row["seconds"] / row["images"]
    row["images_per_hour"] = 3600.0 / row["seconds_per_image"]
    row["evals_per_second"] = row["evaluations"] / row["seconds"]
    row["tflops"] = row["flops_per_eval"] * row["evals_per_second"] / 1e12
    row["matmul_fraction"] = row["tflops"] / matmul if matmul else None
    row["peak_mib_per_image"] = row["peak_mib"] / row["images"]
    return row


def _ratios(rows: list[dict]) -> None:
    ref = rows[0]
    for row in rows[1:]:
        common = min(len(ref["losses"]), len(row["losses"]))
        ratios = [row["losses"][i] / ref["losses"][i] for i in range(common)]
        row["time_ratio"] = row["seconds_per_image"] / ref["seconds_per_image"]
        row["speedup"] = 1.0 / row["time_ratio"]
        row["loss_ratio_mean"] = sum(ratios) / len(ratios) if ratios else None
        row["loss_ratio_worst"] = max(ratios, key=lambda r: abs(r - 1.0)) if ratios else None
        row.update(time_to_reference_loss(ref, row))


def time_to_reference_loss(ref: dict, row: dict) -> dict:
    """When a production run's every sample is at or below the reference's final loss.

    From the row's fp32 `curve` ([evaluations, per-sample losses] at checkpoints, the
    last at the end): the first checkpoint where every sample shared with the
    reference (same content, same seeded noise) has a loss <= the reference's final
    one. Its time is the row's time scaled by the evaluations done by then (a batch
    finishes together, so its slowest sample decides). Empty where there is no curve;
    quality_evals None where the run never got there.
    """
    curve = row.get("curve")
    common = min(len(ref["losses"]), len(row["losses"]))
    if not curve or not common:
        return {}
    evals_per_image = row["evaluations"] / row["images"]
    for evals, losses in curve:
        if all(losses[i] <= ref["losses"][i] for i in range(common)):
            ratio = row["time_ratio"] * evals / evals_per_image
            return dict(quality_evals=evals, quality_time_ratio=ratio, quality_speedup=1.0 / ratio)
    return dict(quality_evals=None, quality_time_ratio=None, quality_speedup=None)


def run_bench(opts: BenchOptions, progress=print, checkpoint=None) -> dict:
    """Run everything `opts` asks for; return the result record (what report.py renders).

    checkpoint(record) is called after every measured row, so a run cut short
    (a time limit on a lent GPU) still leaves what it measured.
    """
    device = torch.device(opts.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the pipeline's Backbone sets it on CUDA
    cfg = build_config(StyleConfig, preset=None, overrides={  # the schema refuses a bad value in one line
        "size": opts.size, "iterations": opts.iterations, "lbfgs_history": opts.history, "pooling": opts.pooling})
    net, pre, weights_label = load_network(opts, device)
    n_ref = opts.reference_images or max(opts.batch_sizes)
    n_max = max([n_ref, *opts.batch_sizes])
    work = Workload(net, pre, cfg, n_max, opts.size, device)
    precisions = list(dict.fromkeys(resolve_precision(p, device) for p in opts.precisions))
    progress(f"bench: {device_name(device)}, torch {torch.__version__}, {opts.size}px, "
             f"{opts.iterations} evaluations, weights: {weights_label}")
    matmul = matmul_tflops(device)
    progress(f"measured bf16 matmul rate: {matmul:.2f} TFLOP/s")
    rows: list[dict] = []
    record = dict(
        options=asdict(opts), device=device_name(device), device_type=device.type, torch=torch.__version__,
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        host_cpus=os.cpu_count(), weights=weights_label, matmul_bf16_tflops=matmul, rows=rows, memory=[],
        errors=[], load_average=[round(os.getloadavg()[0], 2)],
    )

    def add(row: dict) -> None:
        rows.append(_finish(row, net, opts.size, matmul))
        record["load_average"] = record["load_average"][:1] + [round(os.getloadavg()[0], 2)]
        _ratios(rows)
        if checkpoint:
            checkpoint(record)

    # Warm-up (allocator, cuDNN autotuning, first-call overheads) outside the timings.
    reference_path(work, 1, 3, opts.reference_history, lambda *_: None)
    add(reference_path(work, n_ref, opts.iterations, opts.reference_history, progress))
    for p in precisions:
        for b in opts.batch_sizes:
            production_path(work, b, p, 3, opts.history, lambda *_: None, with_losses=False)
            add(production_path(work, b, p, opts.iterations, opts.history, progress,
                                quality_points=opts.quality_points)[0])
    p, b = precisions[-1], max(opts.batch_sizes)
    extras = []
    for mode in opts.compile_modes:
        def compiled(mode=mode):
            # the warm-up compiles (once per process and size); its time is reported, not timed
            t0 = time.perf_counter()
            production_path(work, b, p, 3, opts.history, lambda *_: None, with_losses=False, compile=mode)
            _sync(device)
            row, _ = production_path(work, b, p, opts.iterations, opts.history, progress, compile=mode,
                                     quality_points=opts.quality_points)
            add(dict(row, compile_seconds=round(time.perf_counter() - t0 - row["seconds"], 1)))
        extras.append((f"compile {mode}", compiled))
    if opts.profile:
        def prof():
            from pipeline.bench.profile import profile_evaluations

            record["profile"] = profile_evaluations(work, b, p, opts.history)
            if checkpoint:
                checkpoint(record)
        extras.append(("profile", prof))
    if opts.adam_row:
        # Same batch with Adam (a few elementwise passes, no history): how much of the
        # production time is the L-BFGS history rather than the network.
        extras.append(("adam", lambda: add(production_path(work, b, p, opts.iterations, opts.history, progress,
                                                           optimizer="adam")[0])))
    if opts.coarse_to_fine:
        def c2f():
            # as the pipeline's stage: the content term grows with the pixel count, the style terms do not
            half_cfg = dataclasses.replace(cfg, content_weight=cfg.content_weight * 4)
            half = Workload(net, pre, half_cfg, n_max, opts.size // 2, device)
            production_path(half, b, p, 3, opts.history, lambda *_: None, with_losses=False)
            add(coarse_to_fine_path(work, half, b, p, opts.iterations, opts.history, progress,
                                    budget=opts.coarse_budget))
        extras.append(("coarse-to-fine", c2f))
    if opts.memory_sizes:
        def mem():
            record["memory"] = memory_rows(net, pre, cfg, opts.memory_sizes, p, opts.history, device, progress)
            if checkpoint:
                checkpoint(record)
        extras.append(("memory", mem))
    for name, fn in extras:
        try:
            fn()
        except Exception as exc:  # an optional measurement must not lose the main table
            record["errors"].append(f"{name}: {type(exc).__name__}: {exc}".splitlines()[0])
            progress(f"{name} failed: {record['errors'][-1]}")
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return record
