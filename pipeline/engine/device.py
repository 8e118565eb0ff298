"""The one device resolver: every command, the API and the bench name devices the same way."""

from __future__ import annotations

from pipeline.errors import BadInput


def resolve_device(device: str = "auto") -> str:
    """'auto' -> cuda when available, else cpu; refuses an unusable or unknown device in one line."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and device != "cuda" and not device.startswith("cuda:"):
        raise BadInput(f"unknown device {device!r} (cpu, cuda, cuda:N or auto)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"device {device!r} requested but CUDA is not available")
    return device
