"""Coreset baselines: SynSets whose images are real training images, selected per class.

A selection method maps (RealData, ipc, seed) to the indices of the chosen images, ``ipc`` per class
in class order; :func:`make_coreset` turns the indices into a SynSet.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..data.real import RealData
from ..errors import unknown_name
from ..seeding import make_generator
from ..synset import SynSet

Selector = Callable[..., torch.Tensor]


def select_random(real: RealData, ipc: int, seed: int, **_: object) -> torch.Tensor:
    """Class-balanced uniform sample without replacement, from the stream (seed, 'coreset-random')."""
    generator = make_generator(seed, "coreset", "random")
    return torch.cat([real.sample_indices(c, ipc, generator) for c in range(real.num_classes)])


SELECTORS: dict[str, Selector] = {"random": select_random}


def make_coreset(method: str, real: RealData, ipc: int, seed: int = 0, config: dict | None = None, **options) -> SynSet:
    """Select ``ipc`` real images per class with ``method`` and package them as a SynSet."""
    if method not in SELECTORS:
        raise unknown_name("coreset method", method, list(SELECTORS))
    real.check_ipc(ipc)
    indices = SELECTORS[method](real, ipc, seed, **options)
    return SynSet(
        images=real.images[indices].detach().to("cpu").clone(),
        labels=real.labels[indices].detach().to("cpu").clone(),
        dataset=real.name, num_classes=real.num_classes, mean=real.mean, std=real.std,
        method=f"coreset:{method}", ipc=ipc, config=dict(config or {}, method=method, ipc=ipc, seed=seed),
        class_names=real.class_names,
    )
