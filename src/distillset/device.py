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


def to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Move a host tensor to ``device`` without making the host wait: on CUDA it is staged in pinned memory and
    copied asynchronously (the caching host allocator keeps the staging buffer alive until the copy is done), so
    the Python thread keeps queueing kernels; a pageable ``.to('cuda')`` would wait for the stream each time."""
    device = torch.device(device)
    if device.type != "cuda" or tensor.device.type != "cpu":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def set_deterministic() -> None:
    """Ask every library for reproducible GPU kernels (``--deterministic``; what is in force goes to run.json via
    :func:`numerics_settings`): cuDNN deterministic algorithms and no autotuning (``benchmark`` off), TF32 off for
    matmul and convolutions (full float32 precision), ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (cuBLAS's reproducible
    workspace; set before the first cuBLAS call) and ``torch.use_deterministic_algorithms(True, warn_only=True)``
    (an operation with no deterministic kernel warns instead of failing). On the CPU every kernel is already
    deterministic for a fixed thread count; the flag changes nothing there."""
    import os

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def numerics_settings() -> dict:
    """The settings that decide whether a GPU run repeats bit for bit, as recorded in run.json."""
    import os

    settings = {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
                "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
                "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
                "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
                "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
                "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        settings.update(gpu=torch.cuda.get_device_name(index), cuda=torch.version.cuda,
                        cudnn=torch.backends.cudnn.version())
    return settings
