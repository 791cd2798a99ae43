"""Parameter initialisation from an explicit generator, so a seed fixes every fresh network.

Matches PyTorch's default layer initialisation (uniform with bound 1/sqrt(fan_in) for weights and
biases of convolutions and linear layers; ones and zeros for norm affines), but draws from the
given generator instead of the global RNG.
"""

from __future__ import annotations

import math

import torch
from torch import nn


@torch.no_grad()
def init_parameters(model: nn.Module, generator: torch.Generator) -> nn.Module:
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            _uniform(module.weight, bound, generator)
            if module.bias is not None:
                _uniform(module.bias, bound, generator)
        elif isinstance(module, (nn.GroupNorm, nn.LayerNorm, nn.BatchNorm2d, nn.BatchNorm1d)):
            if getattr(module, "weight", None) is not None:
                module.weight.fill_(1.0)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
            if isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
                module.reset_running_stats()
    return model


def _uniform(tensor: torch.Tensor, bound: float, generator: torch.Generator) -> None:
    values = torch.rand(tensor.shape, generator=generator, dtype=torch.float32) * (2 * bound) - bound
    tensor.copy_(values.to(tensor.device, tensor.dtype))
