"""Choosing and applying the numeric fast path (bf16 autocast + channels_last)."""

from __future__ import annotations

import contextlib
from functools import lru_cache

import torch


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True where the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """'auto' becomes bf16 where the hardware runs it natively, else fp32."""
    device = torch.device(device)
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16() else "fp32"


def autocast(precision: str, device: torch.device | str):
    device = torch.device(device)
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def fast_fp32_matmul(precision: str, device: torch.device | str):
    """On the bf16 path on CUDA, let the fp32 Gram products use TF32 tensor cores.

    Gram matrices stay fp32 in and out (fp32 accumulation); only their inputs are
    rounded to TF32. Strict fp32 matmuls run at a fraction of the tensor-core rate
    and would cost as much as the whole network at 512 px.
    """
    device = torch.device(device)
    if precision != "bf16" or device.type != "cuda":
        yield
        return
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def use_channels_last(precision: str, device: torch.device | str) -> bool:
    """channels_last pays off with bf16 on CPU and GPU alike (docs/speed.md)."""
    return precision == "bf16" or torch.device(device).type == "cuda"
