"""The benchmark itself: one fixed workload, the classic yardstick and the production path.

Classic (rows[0], the quality bar): one image at a time, fp32, NCHW,
`torch.optim.LBFGS(lr=1, history_size=100)` without line search, tolerances off
(pipeline/bench/quality.py), as neural-style and neural-style-pt run it.
Production: the engine as the pipeline runs it: the preset's stage plan
(`coarse_stages`), each stage a `render` with the per-sample batched L-BFGS, the
network stopped at the deepest layer a loss reads, a batch of B images per
forward/backward, bf16 autocast + channels_last where selected, no host
synchronisation inside the loop except at the progress interval.
Both optimise the preset's objective from the preset's start (the content image
for `default`); final losses are re-evaluated in fp32. The strong-Wolfe
`torch.optim.LBFGS` path (the whole VGG16 forward, from seeded noise) is an
optional extra row.
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
from pipeline.bench.quality import at_quality, classic_path, save_side_by_side, schedule_path
from pipeline.bench.report import JITTERED, jittered_row
from pipeline.config import StyleConfig, build_config
from pipeline.engine.loop import RenderOptions, evaluate, logging_step, render
from pipeline.engine.objectives import gram
from pipeline.engine.optim import make_optimizer
from pipeline.engine.precision import resolve_precision
from pipeline.engine.device import resolve_device
from pipeline.errors import BadInput
from pipeline.models.layers import layer_sequence
from pipeline.models.preprocess import Preprocess
from pipeline.models.vgg import VGGFeatures
from pipeline.resources import data_dir

EXAMPLES = data_dir("examples")
CONTENTS = ["astronaut.jpg", "coffee.jpg", "rocket.jpg"]
STYLE = "great_wave_of_kanagawa.jpg"
FULL_NET_LAYER = "block5_pool"


REFERENCE_HISTORY = 100  # torch.optim.LBFGS's default history_size: the plain reference


@dataclass
class BenchOptions:
    device: str = "cpu"
    size: int = 256
    iterations: int | None = None           # production evaluations (all stages); None: the preset's
    classic_evaluations: int = 500          # the classic run whose final losses are the quality bar
    batch_sizes: list[int] = field(default_factory=lambda: [2])
    precisions: list[str] = field(default_factory=lambda: ["auto"])
    reference_images: int | None = None     # images of the classic (and strong-Wolfe) rows; default: largest batch
    random_weights: bool = False
    weights_file: str | None = None
    memory_sizes: list[int] = field(default_factory=list)
    preset: str = "default"                 # the loss, start, schedule and optimiser settings of both paths
    sets: list[str] = field(default_factory=list)   # --set key=value on top of the preset
    images: str | None = None               # write content | classic | production-at-the-bar sheets here
    single_scale_row: bool = False          # the production budget at full size only: what the schedule buys
    wolfe_row: bool = False                 # torch.optim.LBFGS with strong-Wolfe line search, whole net
    adam_row: bool = False
    compile_modes: list[str] = field(default_factory=list)  # extra production rows under torch.compile
    profile_batches: list[int] = field(default_factory=list)  # torch.profiler kernel tables of one evaluation each
    check_every: int = 5                    # fp32 quality checks every this many full-size evaluations
    classic_jitter: float = 0.0             # > 0: a second classic row from the start + N(0, this) grey levels
    history: int | None = None              # production L-BFGS history; None: the preset's
    reference_history: int = REFERENCE_HISTORY
    command: str = ""

    def __post_init__(self):
        self.device = resolve_device(self.device)
        for name, value in (("size", self.size), ("iterations", self.iterations), ("history", self.history),
                            ("classic-evaluations", self.classic_evaluations), ("check-every", self.check_every)):
            if value is not None and value <= 0:
                raise BadInput(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= self.classic_jitter < float("inf"):
            raise BadInput(f"classic-jitter must be a finite number >= 0 of grey levels, got {self.classic_jitter!r}")
        if self.size < 32:
            raise BadInput(f"size must be at least 32 px (VGG16 pools five times), got {self.size}")
        # a bad preset or --set: one line, exit 2, before any work
        build_config(preset=self.preset, overrides=dict(size=self.size, iterations=self.iterations,
                                                         lbfgs_history=self.history), sets=self.sets)
        if self.weights_file and not Path(self.weights_file).is_file():
            raise BadInput(f"weights file not found: {self.weights_file}")


# ------------------------------------------------------------------ setup

def load_network(opts: BenchOptions, device: torch.device, pooling: str) -> tuple[VGGFeatures, Preprocess, str]:
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
    return VGGFeatures("vgg16", state, pooling).to(device), pre, label


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
        contents = [_square(EXAMPLES / "content" / CONTENTS[i % len(CONTENTS)], size) for i in range(n)]
        self.content_net = pre.to_net(torch.cat(contents).to(device))
        style_net = pre.to_net(_square(EXAMPLES / "style" / STYLE, size).to(device))
        self.style_net = style_net
        with torch.no_grad():
            acts = net(style_net, cfg.style_layers)
            self.grams = {layer: gram(acts[layer]) for layer in cfg.style_layers}
            self.content_acts = net(self.content_net, [cfg.content_layer])[cfg.content_layer].float()
        self.noise = torch.cat([pre.noise((1, 3, size, size), torch.Generator().manual_seed(i))
                                for i in range(n)]).to(device)
        self.start = self.content_net if cfg.init == "content" else self.noise  # the preset's start

    def objective(self, lo: int, hi: int):
        from pipeline.methods.stylize import build_objective

        return build_objective(self.cfg, self.content_acts[lo:hi], self.grams)

    def final_losses(self, x: torch.Tensor, lo: int) -> list[float]:
        """Total loss per sample at x, evaluated in fp32 on the same objective for both paths."""
        parts = evaluate(self.net, self.objective(lo, lo + x.shape[0]), x, "fp32")
        return [float(v) for v in sum(parts.values()).cpu()]


# ------------------------------------------------------------------ the look

def looks(ruler, work: Workload, x: torch.Tensor) -> list[dict]:
    """structure and style match (methods/look.py) of each final image against its content and the style."""
    from pipeline.pixels import to_pil

    pil = lambda t: to_pil(work.pre.to_pixels(t.detach().float().cpu()).clamp(0, 255))  # noqa: E731
    style = pil(work.style_net)
    return [ruler.score_one(pil(work.content_net[i:i + 1]), style, pil(x[i:i + 1])).as_dict()
            for i in range(x.shape[0])]


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
    """The optional strong-Wolfe row: one image at a time, fp32, NCHW, torch.optim.LBFGS with its
    strong-Wolfe line search, the whole VGG16 forward, from the preset's start."""
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
        x = work.start[i:i + 1].clone().requires_grad_(True)
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
        progress(f"strong-Wolfe image {i + 1}/{n}: {evals} evaluations")
    _sync(dev)
    seconds = time.perf_counter() - start
    x = torch.cat(outs)
    return dict(path="torch L-BFGS strong-Wolfe", precision="fp32", batch=1, images=n, evaluations=evals_total,
                seconds=seconds, peak_mib=_peak_mib(dev), losses=work.final_losses(x, 0),
                forward_to=FULL_NET_LAYER, backward_to=deepest(net, objective.layers))


def production_path(work: Workload, batch: int, precision: str, iterations: int, history: int,
                    progress, x0: torch.Tensor | None = None, with_losses: bool = True,
                    optimizer: str = "lbfgs", compile: str = "none") -> tuple[dict, torch.Tensor]:
    """One full-size render of a batch (warm-ups, the Adam row, memory rows)."""
    dev = work.device
    objective = work.objective(0, batch)
    x0 = work.start[:batch] if x0 is None else x0
    every = max(1, iterations // 5)

    def on_log(i, total, rows):
        progress(f"production {precision} batch {batch}: {i}/{total} evaluations")

    _reset_peak(dev)
    _sync(dev)
    start = time.perf_counter()
    options = RenderOptions(iterations, optimizer=optimizer, lr=work.cfg.learning_rate, history=history,
                            precision=precision, log_every=every, max_step=work.cfg.lbfgs_max_step * work.pre.unit,
                            compile=compile)
    result = render(work.net, objective, x0, options, logging_step(on_log))
    _sync(dev)
    seconds = time.perf_counter() - start
    peak = _peak_mib(dev)
    losses = work.final_losses(result.x, 0) if with_losses else []
    label = [optimizer] if optimizer != "lbfgs" else []
    label += [f"compile {result.compiled}"] if compile != "none" else []
    path = "production" + (f" ({', '.join(label)})" if label else "")
    return dict(path=path, precision=precision, batch=batch, images=batch,
                evaluations=result.evaluations * batch, seconds=seconds, peak_mib=peak, losses=losses,
                forward_to=deepest(work.net, objective.layers),
                backward_to=deepest(work.net, objective.layers)), result.x


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
    """Every row against the classic one (rows[0]): time and final loss, and when it reached the bar
    (and the band: per sample the larger of the bar and the jittered classic row's final loss)."""
    ref = rows[0]
    jittered = jittered_row(rows)
    band = [max(a, b) for a, b in zip(ref["losses"], jittered["losses"])] if jittered else None
    for row in rows[1:]:
        common = min(len(ref["losses"]), len(row["losses"]))
        ratios = [row["losses"][i] / ref["losses"][i] for i in range(common)]
        row["time_ratio"] = row["seconds_per_image"] / ref["seconds_per_image"]
        row["speedup"] = 1.0 / row["time_ratio"]
        row["loss_ratio_mean"] = sum(ratios) / len(ratios) if ratios else None
        row["loss_ratio_worst"] = max(ratios, key=lambda r: abs(r - 1.0)) if ratios else None
        if row.get("curve"):
            row.update(at_quality(ref, row))
            if band:
                row.update({f"band_{k}": v for k, v in at_quality(ref, row, band).items()})


def _plan(cfg: StyleConfig, size: int) -> list[tuple[int, int]]:
    """The preset's stages for a size×size image: [(evaluations, side), ...], coarsest first."""
    from pipeline.methods.stages import stage_plan

    return [(n, wh[0]) for n, wh in stage_plan(cfg.iterations, cfg.coarse_stages, (size, size), cfg.stage_base,
                                              cfg.stage_base_share)]


def run_bench(opts: BenchOptions, progress=print, checkpoint=None) -> dict:
    """Run everything `opts` asks for; return the result record (what report.py renders).

    checkpoint(record) is called after every measured row, so a run cut short
    (a time limit on a lent GPU) still leaves what it measured.
    """
    device = torch.device(opts.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the pipeline's Backbone sets it on CUDA
    overrides = dict(size=opts.size, iterations=opts.iterations, lbfgs_history=opts.history)
    cfg = build_config(preset=opts.preset, overrides=overrides, sets=opts.sets)
    net, pre, weights_label = load_network(opts, device, cfg.pooling)
    n_ref = opts.reference_images or max(opts.batch_sizes)
    n_max = max([n_ref, *opts.batch_sizes, *opts.profile_batches])
    works: dict[int, Workload] = {}

    def work_at(side: int) -> Workload:
        if side not in works:
            works[side] = Workload(net, pre, cfg, n_max, side, device)
        return works[side]

    work = work_at(opts.size)
    plan = _plan(cfg, opts.size)
    precisions = list(dict.fromkeys(resolve_precision(p, device) for p in opts.precisions))
    progress(f"bench: {device_name(device)}, torch {torch.__version__}, {opts.size}px, preset {opts.preset}, "
             f"stages {plan}, classic {opts.classic_evaluations} evaluations, weights: {weights_label}")
    matmul = matmul_tflops(device)
    progress(f"measured bf16 matmul rate: {matmul:.2f} TFLOP/s")
    rows: list[dict] = []
    record = dict(
        options=asdict(opts), config=cfg.to_dict(), device=device_name(device), device_type=device.type,
        torch=torch.__version__,
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        host_cpus=os.cpu_count(), weights=weights_label, matmul_bf16_tflops=matmul, rows=rows, memory=[],
        profiles=[], errors=[], load_average=[round(os.getloadavg()[0], 2)],
    )

    def add(row: dict) -> None:
        rows.append(_finish(row, net, opts.size, matmul))
        record["load_average"] = record["load_average"][:1] + [round(os.getloadavg()[0], 2)]
        _ratios(rows)
        if checkpoint:
            checkpoint(record)

    latest: dict = {}
    ruler = None
    if not opts.random_weights:  # the look needs trained weights on both networks
        from pipeline.methods.look import LookRuler

        ruler = LookRuler()

    def look(row: dict, x: torch.Tensor) -> dict:
        if ruler is not None:
            row["looks"] = looks(ruler, work, x)
        return row

    def scheduled(b: int, p: str, stages, label: str = "production", compile: str = cfg.compile,
                  warm_up: bool = False) -> dict:
        _reset_peak(device)
        bar = rows[0]["losses"] if rows else None
        row, images = schedule_path([work_at(side) for _, side in stages], stages, b, p, cfg.lbfgs_history,
                                    progress, opts.check_every, bar=bar, compile=compile, label=label,
                                    peak=lambda: _peak_mib(device))
        latest["images"] = images  # only the latest row's checked images are kept
        return row if warm_up else look(row, images[max(images)])

    def pictures(row: dict) -> None:
        """The side-by-side sheet, from the first row at the bar; failing that, the first in the band."""
        if not opts.images:
            return
        at = "bar" if row.get("quality_evals") is not None else (
            "band" if row.get("band_quality_evals") is not None else None)
        if at is None or record.get("images", {}).get("at") in ("bar", at):
            return
        evals = row["quality_evals" if at == "bar" else "band_quality_evals"]
        Path(opts.images).mkdir(parents=True, exist_ok=True)
        out = Path(opts.images) / f"classic-vs-production-{opts.size}px.jpg"
        save_side_by_side(work, classic_x, latest["images"][evals], out)
        record["images"] = dict(path=str(out), production=f"{row['path']}, {row['precision']} batch {row['batch']}", at=at,
                                production_evaluations=evals)
        progress(f"wrote {out} (production at the {at})")

    # Warm-up (allocator, cuDNN autotuning, first-call overheads) outside the timings.
    classic_path(work, 1, 3, lambda *_: None)
    _reset_peak(device)
    classic_row, classic_x = classic_path(work, n_ref, opts.classic_evaluations, progress,
                                          peak=lambda: _peak_mib(device))
    add(look(classic_row, classic_x))
    if opts.classic_jitter:
        _reset_peak(device)
        jittered, _ = classic_path(work, n_ref, opts.classic_evaluations, progress, jitter=opts.classic_jitter,
                                    peak=lambda: _peak_mib(device))
        jittered["path"] = f"{JITTERED} (start + N(0, {opts.classic_jitter:g}) grey levels)"
        add(jittered)
    for p in precisions:
        for b in opts.batch_sizes:
            scheduled(b, p, [(3, side) for _, side in plan], compile="none", warm_up=True)  # at every stage size
            row = scheduled(b, p, plan)
            add(row)
            pictures(row)
    p, b = precisions[-1], max(opts.batch_sizes)
    extras = []
    if opts.single_scale_row:
        # as many full-size evaluations as the schedule's budget costs (FLOP-weighted)
        full = [(max(1, round(sum(n * (side / opts.size) ** 2 for n, side in plan))), opts.size)]
        def single_scale():
            row = scheduled(b, p, full, label="production, one scale")
            add(row)
            pictures(row)
        extras.append(("single scale", single_scale))
    for mode in opts.compile_modes:
        def compiled(mode=mode):
            # the warm-up compiles (once per process and size); its time is reported, not timed
            t0 = time.perf_counter()
            scheduled(b, p, [(3, side) for _, side in plan], compile=mode, warm_up=True)
            _sync(device)
            row = scheduled(b, p, plan, label=f"production (compile {mode})", compile=mode)
            add(dict(row, compile_seconds=round(time.perf_counter() - t0 - row["seconds"], 1)))
        extras.append((f"compile {mode}", compiled))
    for pb in opts.profile_batches:
        def prof(pb=pb):
            from pipeline.bench.profile import profile_evaluations

            record["profiles"].append(profile_evaluations(work_at(opts.size), pb, p, cfg.lbfgs_history))
            if checkpoint:
                checkpoint(record)
        extras.append((f"profile batch {pb}", prof))
    if opts.wolfe_row:
        extras.append(("strong-Wolfe", lambda: add(reference_path(work, n_ref, opts.classic_evaluations,
                                                                  opts.reference_history, progress))))
    if opts.adam_row:
        # Same batch with Adam (a few elementwise passes, no history): how much of the
        # production time is the L-BFGS history rather than the network.
        extras.append(("adam", lambda: add(production_path(work, b, p, plan[-1][0], cfg.lbfgs_history,
                                                           progress, optimizer="adam")[0])))
    if opts.memory_sizes:
        def mem():
            record["memory"] = memory_rows(net, pre, cfg, opts.memory_sizes, p, cfg.lbfgs_history, device, progress)
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
