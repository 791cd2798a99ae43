"""GSAM (Zhuang et al., ICLR 2022, "Surrogate Gap Guided Sharpness-Aware Minimization") on flat parameters.

DATM trains its experts with it (FTD's flat trajectories: rho 0.01, alpha 0.3, adaptive). One step, for
parameters w and loss L, with the reference implementation's formulas:

    g = grad L(w)
    e = rho * s * g / ||sqrt(s) * g||,  s = w^2 when adaptive (ASAM's scaling), else 1
    g_p = grad L(w + e)                          (the sharpness-aware gradient)
    g_v = g - (<g, g_p> / ||g_p||^2) g_p         (the part of g orthogonal to g_p)
    d = g_p - alpha * g_v                        (the direction handed to the base optimiser, SGD here)

Descending along -g_v as well lowers the surrogate gap L(w + e) - L(w) without changing L(w + e) to first
order. Every function works on one flat parameter vector [P] or a stack of independent ones [E, P]
(the rows never mix), so vmapped experts take the same step as one expert alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

EPS = 1e-12


def _row_norm(x: torch.Tensor) -> torch.Tensor:
    return x.norm(dim=-1, keepdim=True)


def gsam_direction(gradient: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], theta: torch.Tensor, rho: float,
                   alpha: float, adaptive: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(the GSAM update direction d, the loss at ``theta``); ``gradient(theta) -> (grad, loss)``."""
    g, loss = gradient(theta)
    scale = theta * theta if adaptive else torch.ones_like(theta)
    norm = _row_norm((theta.abs() if adaptive else torch.ones_like(theta)) * g)
    e = rho * scale * g / (norm + EPS)
    g_p, _ = gradient(theta + e)
    inner = (g * g_p).sum(-1, keepdim=True)
    vertical = g - inner / (_row_norm(g_p) ** 2 + EPS) * g_p
    return g_p - alpha * vertical, loss
