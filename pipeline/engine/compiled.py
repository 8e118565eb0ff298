"""One loss-and-gradient evaluation, eager or through torch.compile, with a plain eager fallback.

Why compile: the forward/backward of a pixel optimisation is dozens of small
element-wise kernels (ReLU, pooling, casts, loss terms) around the convolutions;
inductor fuses them. Compilation costs seconds once per image size and process;
where it pays is measured in docs/speed.md ("torch.compile"). On CUDA, mode
"reduce-overhead" adds CUDA graphs (one launch per graph instead of hundreds).

Modes: none (eager), default, reduce-overhead, max-autotune, and auto: compile
only where it was measured to pay, i.e. on CPU, average pooling, and a render
big enough to repay the compilation; eager on CUDA until a GPU benchmark shows a
gain (benchmarks/gpu.sh measures each mode). Any failure to compile (no C++ compiler,
an unsupported op) falls back to eager for the rest of the process, with one
warning.
"""

from __future__ import annotations

import warnings

import torch

from pipeline.engine.choices import COMPILE_MODES
from pipeline.engine.precision import autocast

# auto compiles a CPU render of at least this many pixel-evaluations (B·H·W·iterations): where the
# eager work outweighs the one-off compilation (docs/speed.md, **torch.compile**, has the measurements).
AUTO_CPU_PIXEL_EVALS = 32_000_000

_compiled: dict[str, object] = {}   # mode -> compiled forward_parts, shared by every render of the process
_broken: dict[str, str] = {}        # mode -> why it fell back to eager


def forward_parts(net, objective, x: torch.Tensor, precision: str, channels_last: bool) -> dict:
    """Per-term per-sample losses at x (autocast around the network, reductions in fp32)."""
    with autocast(precision, x.device):
        xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        acts = net(xin, objective.layers) if objective.layers else {}
    return objective.parts(acts, x)


def resolve_compile(mode: str, device: torch.device | str, pixel_evals: float, pooling: str = "avg") -> str:
    """The mode to use for one render: 'auto' decided by device, pooling and size; others as given."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
    if mode != "auto":
        return mode
    if torch.device(device).type == "cpu" and pooling == "avg" and pixel_evals >= AUTO_CPU_PIXEL_EVALS:
        return "default"
    return "none"


def compiled_forward(mode: str):
    """forward_parts compiled for `mode` (one per process, so every batch of a run reuses it)."""
    if mode not in _compiled:
        import logging

        import torch._dynamo

        # inductor's CPU build warns "No CUDA runtime is found" on every CPU-only machine
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)

        # one graph per image size; a dataset run sees a few sizes (size buckets)
        cfg = torch._dynamo.config
        for name in ("recompile_limit", "cache_size_limit"):  # the name changed across torch versions
            if hasattr(cfg, name):
                setattr(cfg, name, max(getattr(cfg, name), 16))
        _compiled[mode] = torch.compile(forward_parts, mode=None if mode == "default" else mode, dynamic=False)
    return _compiled[mode]


class LossAndGrad:
    """Evaluates the objective at x and leaves d(sign·Σ losses)/dx in x.grad; returns the
    per-term per-sample losses and the (detached) total sign·Σ losses."""

    def __init__(self, net, objective, precision: str, channels_last: bool, mode: str = "none"):
        self.net, self.objective = net, objective
        self.precision, self.channels_last = precision, channels_last
        self.mode = mode if mode not in _broken else "none"

    @property
    def compiled(self) -> bool:
        return self.mode != "none"

    def __call__(self, x: torch.Tensor, sign: float = 1.0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        if self.compiled:
            try:
                return self._run(compiled_forward(self.mode), x, sign)
            except Exception as exc:  # noqa: BLE001 - any compile/run failure: eager from now on
                from pipeline.engine.batching import is_oom

                if is_oom(exc):
                    raise
                self._fall_back(exc)
                x.grad = None
        return self._run(forward_parts, x, sign)

    def _run(self, fn, x: torch.Tensor, sign: float) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        if self.mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's outputs are no longer read
        parts = fn(self.net, self.objective, x, self.precision, self.channels_last)
        total = (sign * sum(parts.values())).sum()
        total.backward()
        return parts, total.detach()

    def _fall_back(self, exc: BaseException) -> None:
        why = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        _broken[self.mode] = why
        warnings.warn(f"torch.compile (mode {self.mode}) failed, running eager instead: "
                      f"{type(exc).__name__}: {why}", RuntimeWarning, stacklevel=3)
        self.mode = "none"
