"""Parameter initialisation from an explicit generator, so a seed fixes every fresh network.

Matches PyTorch's default layer initialisation (uniform with bound 1/sqrt(fan_in) for weights and
biases of convolutions and linear layers; ones and zeros for norm affines), but draws from the
given generator instead of the global RNG. :func:`init_xavier` is the original Dataset Distillation code's
``--init xavier`` (its default): Gaussian weights with variance 2 / (fan_in + fan_out), zero biases.
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


@torch.no_grad()
def init_xavier(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Xavier-normal weights (gain 1) and zero biases for every convolution and linear layer, drawn from ``generator``;
    other layers as :func:`init_parameters`. DD's networks are initialised so, and its images are distilled for that
    distribution of initial weights, so they are evaluated on networks drawn from it too."""
    init_parameters(model, generator)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            receptive = module.weight[0, 0].numel()
            fan_in, fan_out = module.weight.shape[1] * receptive, module.weight.shape[0] * receptive
            std = math.sqrt(2.0 / (fan_in + fan_out))
            values = torch.randn(module.weight.shape, generator=generator, dtype=torch.float32) * std
            module.weight.copy_(values.to(module.weight.device, module.weight.dtype))
            if module.bias is not None:
                module.bias.zero_()
    return model
