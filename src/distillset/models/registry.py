"""One registry of model names -> constructors, with ConvNet variants spelled in the name.

``convnet`` is depth 3, width 128, instance norm, ReLU, average pooling; suffixes change one thing
each and combine: ``convnet-d4``, ``convnet-w64``, ``convnet-bn`` / ``-ln`` / ``-gn`` / ``-nonorm``,
``convnet-sigmoid`` / ``-leakyrelu`` / ``-swish``, ``convnet-maxpool`` / ``-nopool``; e.g.
``convnet-d4-w64-bn``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
from torch import nn

from ..errors import DistillsetError, unknown_name
from .convnet import MLP, ConvNet
from .init import init_parameters, init_xavier
from .zoo import VGG11, AlexNet, LeNet, ResNet18

INITIALISATIONS = {"default": init_parameters, "xavier": init_xavier}  # build_model's ``init``

_NORM_SUFFIX = {"in": "instance", "bn": "batch", "ln": "layer", "gn": "group", "nonorm": "none"}
_ACT_SUFFIX = {"relu": "relu", "sigmoid": "sigmoid", "leakyrelu": "leakyrelu", "swish": "swish"}
_POOL_SUFFIX = {"avgpool": "avg", "maxpool": "max", "nopool": "none"}

Builder = Callable[[int, tuple[int, int], int], nn.Module]
MODELS: dict[str, Builder] = {
    "mlp": lambda c, s, k: MLP(c, s, k),
    "lenet": lambda c, s, k: LeNet(c, s, k),
    "alexnet": lambda c, s, k: AlexNet(c, s, k),
    "alexnet-bn": lambda c, s, k: AlexNet(c, s, k, batch_norm=True),
    "vgg11": lambda c, s, k: VGG11(c, s, k),
    "vgg11-bn": lambda c, s, k: VGG11(c, s, k, norm="batch"),
    "resnet18": lambda c, s, k: ResNet18(c, s, k),
    "resnet18-bn": lambda c, s, k: ResNet18(c, s, k, norm="batch"),
    "resnet18-ap": lambda c, s, k: ResNet18(c, s, k, avg_pool_downsample=True),
    "resnet18-bn-ap": lambda c, s, k: ResNet18(c, s, k, norm="batch", avg_pool_downsample=True),
}


def canonical_name(name: str) -> str:
    """Accept the reference code's spellings too: ResNet18BN_AP -> resnet18-bn-ap, AlexNetBN -> alexnet-bn."""
    name = name.strip().lower().replace("_", "-")
    for base in ("alexnet", "vgg11", "resnet18"):
        if name.startswith(base + "bn"):
            name = base + "-bn" + name[len(base) + 2:]
    return name


def convnet_options(name: str) -> dict:
    """Parse ``convnet[-suffix...]`` into ConvNet keyword arguments."""
    options: dict = {}
    for part in name.split("-")[1:]:
        if m := re.fullmatch(r"d(\d+)", part):
            options["depth"] = int(m.group(1))
        elif m := re.fullmatch(r"w(\d+)", part):
            options["width"] = int(m.group(1))
        elif part in _NORM_SUFFIX:
            options["norm"] = _NORM_SUFFIX[part]
        elif part in _ACT_SUFFIX:
            options["act"] = _ACT_SUFFIX[part]
        elif part in _POOL_SUFFIX:
            options["pool"] = _POOL_SUFFIX[part]
        else:
            raise DistillsetError(
                f"unknown ConvNet variant '{part}' in model '{name}'; suffixes: dN (depth), wN (width), "
                f"{'/'.join(_NORM_SUFFIX)} (norm), {'/'.join(_ACT_SUFFIX)} (activation), {'/'.join(_POOL_SUFFIX)} (pooling)"
            )
    if options.get("width", 1) < 1:
        raise DistillsetError(f"ConvNet width must be positive in '{name}'")
    return options


def model_names() -> list[str]:
    return ["convnet", "convnet-<variant>"] + sorted(MODELS)


def build_model(name: str, shape: tuple[int, int, int], num_classes: int,
                generator: torch.Generator | None = None, device: str | torch.device = "cpu", init: str = "default") -> nn.Module:
    """A fresh network for inputs of ``shape`` (C, H, W), initialised from ``generator`` when given: PyTorch's
    default layer initialisation, or ``init="xavier"`` (DD's, :func:`~.init.init_xavier`)."""
    if init not in INITIALISATIONS:
        raise unknown_name("network initialisation", init, list(INITIALISATIONS))
    name = canonical_name(name)
    channels, height, width = shape
    if name == "convnet" or name.startswith("convnet-"):
        model = ConvNet(channels, (height, width), num_classes, **convnet_options(name))
    elif name in MODELS:
        model = MODELS[name](channels, (height, width), num_classes)
    else:
        raise unknown_name("model", name, model_names())
    if generator is not None:
        INITIALISATIONS[init](model, generator)
    return model.to(device)


def check_model_fits(name: str, shape: tuple[int, int, int], num_classes: int) -> None:
    """Refuse, in one line, a model that cannot train on a single image of ``shape`` (an input so small that a
    normalisation layer sees one value per channel, or that a layer cannot take at all)."""
    net = build_model(name, shape, num_classes)
    net.train()
    try:
        with torch.no_grad():
            net(torch.zeros(1, *shape))
    except (ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DistillsetError(f"model '{name}' cannot train on {list(shape)} inputs ({reason}); choose a smaller model "
                              "(e.g. convnet-d2) or larger images") from None


def check_model_name(name: str) -> None:
    """Fail early (before any data is loaded) on a name the registry does not know."""
    name = canonical_name(name)
    if name == "convnet" or name.startswith("convnet-"):
        convnet_options(name)
    elif name not in MODELS:
        raise unknown_name("model", name, model_names())
