"""2x2 average pooling with stride 2, bitwise equal to ``F.avg_pool2d(x, 2)`` and faster on a CPU.

Why: in the ConvNet every benchmark here trains (MNIST-sized, width 128, batch 256, one CPU thread) PyTorch's
``avg_pool2d`` and its backward took about a quarter of a training step (BENCHMARKS.md, "Host memory and 2x2 pooling").
Its CPU kernel walks every output element and its window one at a time; the same sums written as three whole-tensor
additions over strided views vectorise.

The maths is the kernel's, in the kernel's order, so the result has the same bits:
``y[i, j] = (((x[2i, 2j] + x[2i, 2j+1]) + x[2i+1, 2j]) + x[2i+1, 2j+1]) / 4``, and the backward spreads ``g / 4``
over each window (the kernel adds ``g / 4`` into a zeroed gradient, which is ``g / 4`` exactly). The backward is
itself differentiable, with the pooling as its derivative (PyTorch's definition for ``avg_pool2d_backward``), so
gradient matching's second-order terms (``create_graph=True``) have PyTorch's bits too, and ``torch.func``
(``grad``, ``vmap``: the batched evaluation and the experts) passes through both. Odd feature maps (which
``nn.AvgPool2d`` floors) and tensors on a GPU go to ``F.avg_pool2d`` unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _window_mean(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    window = x.reshape(n, c, h // 2, 2, w // 2, 2)
    total = window[:, :, :, 0, :, 0] + window[:, :, :, 0, :, 1]
    total += window[:, :, :, 1, :, 0]
    total += window[:, :, :, 1, :, 1]
    return total.div_(4)


def _spread(grad: torch.Tensor) -> torch.Tensor:
    # each value doubled along the width, then each row doubled: two copies with a contiguous inner run, measured
    # faster than one copy through a 6-D view with two broadcast axes
    n, c, h, w = grad.shape
    wide = (grad / 4)[..., None].expand(n, c, h, w, 2).reshape(n, c, h, 2 * w)
    return wide[:, :, :, None, :].expand(n, c, h, 2, 2 * w).reshape(n, c, 2 * h, 2 * w)


class _GradientOnly(torch.autograd.Function):
    """A linear map whose backward needs nothing but the incoming gradient (no saved tensors); torch.func derives
    its vmap rule."""

    generate_vmap_rule = True

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        pass


class _AvgPool2x2(_GradientOnly):
    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return _window_mean(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _Spread.apply(grad)


class _Spread(_GradientOnly):
    """The pooling's backward as a function of its own, whose derivative is the pooling again (as PyTorch defines
    ``avg_pool2d_backward``'s): so second-order terms sum each window in the kernel's order too."""

    @staticmethod
    def forward(grad: torch.Tensor) -> torch.Tensor:
        return _spread(grad)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _AvgPool2x2.apply(grad)


def avg_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """``F.avg_pool2d(x, 2)`` for a 4-D ``x`` (module docstring); on a GPU, PyTorch's own kernel (one pass there)."""
    if x.device.type != "cpu" or x.dim() != 4 or x.shape[-2] % 2 or x.shape[-1] % 2:
        return F.avg_pool2d(x, 2)
    return _AvgPool2x2.apply(x)


class AvgPool2x2(nn.Module):
    """``nn.AvgPool2d(2)`` through :func:`avg_pool_2x2`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return avg_pool_2x2(x)
