"""Helpers shared by the benchmark scripts: the device's measured matmul rate, FLOP counting, results files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode


def matmul_gflops(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """fp32 matmul rate measured now, on this device: the denominator of every 'fraction of floor'."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOPs of one forward + backward pass on (x, y), counted by PyTorch's FlopCounterMode."""
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def forward_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def merge_results(results: dict, files: list[Path], may_differ: tuple[str, ...] = ()) -> dict:
    """Fold the cells of other results files (of runs made in parallel) into ``results``.

    The same cell measured twice with different values is an error, so that a merge never silently
    picks one of two measurements; keys ending in one of ``may_differ`` keep the first value seen.
    """
    merged = dict(results)
    for file in files:
        for key, cell in json.loads(file.read_text()).items():
            if key in merged and merged[key] != cell and not key.endswith(may_differ):
                raise SystemExit(f"{file}: cell {key} differs from the one already in the results; keep one of them")
            merged.setdefault(key, cell)
    return merged
