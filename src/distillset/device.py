"""Which torch device a command runs on: the one helper every layer shares (below the drivers and methods)."""

from __future__ import annotations

import torch

from .errors import DistillsetError


def resolve_device(device: str | None) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or None/'auto' (a GPU when there is one)."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise DistillsetError(f"unknown device '{device}'; use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DistillsetError(f"device '{device}' requested but PyTorch sees no CUDA GPU here; use --device cpu")
    if resolved.type == "mps" and not (torch.backends.mps.is_available() and torch.backends.mps.is_built()):
        raise DistillsetError(f"device '{device}' requested but this PyTorch has no usable MPS backend; use --device cpu")
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise DistillsetError(f"unsupported device '{device}'; use cpu or cuda")
    return resolved
