"""Augmentation: DSA (differentiable siamese augmentation), the DC paper's evaluation augmentation, ZCA."""

from __future__ import annotations

from .dc import DCAugment, dc_strategy
from .dsa import DEFAULT_STRATEGY, DSA, NO_FLIP_STRATEGY, DSAParams, strategy_for

AUGMENT_CHOICES = ("none", "dsa", "dc")


def make_augment(name: str, dataset: str, model: str):
    """The training augmentation called ``name`` for sets of ``dataset`` trained on ``model``, or None.

    "dsa": DSA's six families (no flip for digits); "dc": the DC code's ``get_daparam`` choice, which depends on
    the dataset and the model (MNIST: crop/scale/rotate; a BatchNorm ConvNet: crop/noise; otherwise none);
    "none": no augmentation."""
    from ..errors import DistillsetError

    if name == "none":
        return None
    if name == "dsa":
        return DSA(strategy_for(dataset))
    if name == "dc":
        strategy = dc_strategy(dataset, model)
        return DCAugment(strategy) if strategy else None
    raise DistillsetError(f"unknown augmentation '{name}'; use one of {', '.join(AUGMENT_CHOICES)}")


__all__ = ["AUGMENT_CHOICES", "DCAugment", "DEFAULT_STRATEGY", "DSA", "DSAParams", "NO_FLIP_STRATEGY", "dc_strategy",
           "make_augment", "strategy_for"]
