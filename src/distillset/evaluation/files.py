"""Evaluating a SynSet file against the real test split of the dataset it names."""

from __future__ import annotations

import os
from collections.abc import Callable

from ..data import load_dataset
from ..device import resolve_device
from ..distributed import local_device
from ..errors import DistillsetError
from ..synset import SynSet
from .protocol import EvalResults, evaluate_synset


def evaluate_file(path: str | os.PathLike, models: list[str], runs: int = 5, epochs: int | None = None,
                  lr: float | None = None, seed: int = 0, data_root=None, device: str | None = "cpu",
                  download: bool = False, verify: bool = True, strategy: str = "auto", dsa: bool = False,
                  log: Callable[[str], None] | None = None) -> EvalResults:
    """Evaluate a SynSet file on the real test split of the dataset it names (``dsa``: augment training)."""
    from ..augment import DSA, strategy_for

    synset = SynSet.load(path)
    image_size = tuple(synset.shape[1:]) if synset.dataset.startswith("imagefolder:") else None
    data = load_dataset(synset.dataset, data_root=data_root, download=download, verify=verify, image_size=image_size)
    if data.num_classes != synset.num_classes:
        raise DistillsetError(f"{path} has {synset.num_classes} classes but dataset '{synset.dataset}' has {data.num_classes}")
    return evaluate_synset(synset, data.test_images, data.test_labels, models=models, runs=runs, epochs=epochs,
                           lr=lr, seed=seed, device=resolve_device(local_device(device)), strategy=strategy,
                           augment=DSA(strategy_for(synset.dataset)) if dsa else None, progress=log)
