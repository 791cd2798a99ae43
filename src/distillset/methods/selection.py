"""The selection side of the method contract: coresets and DQ keep real training images, chosen per class.

A selection engine takes one step (the selection); its state holds the chosen ``indices`` into the
training split and the ``images`` it keeps (equal to the real ones unless a method edits them, as DQ's
patch dropping does). The size is ``ipc`` images per class, or ``ratio`` of the training set kept
class-balanced (ipc = round(ratio * N / classes), at least 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch

from ..data.real import RealData
from ..errors import DistillsetError
from ..models import check_model_name
from ..synset import SynSet
from .contract import OneStepSelection, State, check_config, option
from .feature_network import FeatureNetwork, train_feature_network


@dataclass
class SelectionConfig:
    ipc: int | None = option(None, "images per class (or give ratio)", low=1)
    ratio: float | None = option(None, "fraction of the training set kept, class-balanced (or give ipc)", low=0, low_open=True, high=1)
    seed: int = option(0, "the seed of every random draw")


@dataclass
class FeatureSelectionConfig(SelectionConfig):
    """Selection on the embeddings of a network trained on the real training set (cached: methods.feature_network)."""

    feature_model: str = option("convnet", "the network trained on the real data whose embeddings rank the images")
    feature_epochs: int = option(3, "its training epochs", low=1)


def ipc_for_ratio(ratio: float, real: RealData) -> int:
    """Images per class that keep ``ratio`` of the training set, class-balanced (at least one)."""
    return max(1, round(ratio * real.labels.numel() / real.num_classes))


class SelectionEngine(OneStepSelection):
    """Base of the image selection methods: subclasses set ``name`` and implement :meth:`select`."""

    def __init__(self, real: RealData, config: SelectionConfig) -> None:
        self.config = check_config(replace(config))
        if (self.config.ipc is None) == (self.config.ratio is None):
            raise DistillsetError("give exactly one of --ipc and --ratio")
        if getattr(self.config, "feature_model", None) is not None:
            check_model_name(self.config.feature_model)
        self.real = real
        self.ipc = self.config.ipc if self.config.ipc is not None else ipc_for_ratio(self.config.ratio, real)
        real.check_ipc(self.ipc)
        self.log: Callable[[str], None] | None = None  # the driver's progress messages (feature-network training)

    def feature_network(self) -> FeatureNetwork:
        """The network trained on the real data (``feature_model``, ``feature_epochs``; cached on disk)."""
        cfg = self.config
        return train_feature_network(self.real, cfg.feature_model, cfg.feature_epochs, cfg.seed, log=self.log)

    def select(self) -> torch.Tensor:
        """Indices into the training split, ``ipc`` per class."""
        raise NotImplementedError

    def edit(self, indices: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """The kept images, changed after selection when a method does so (DQ's patch dropping)."""
        return images

    def step(self, state: State) -> float:
        indices = self.select()
        images = self.edit(indices, self.real.images[indices].detach())
        return self.record(state, {"indices": indices.detach().cpu(), "images": images.detach()})

    def to_synset(self, state: State) -> SynSet:
        indices = state.tensors["indices"]
        config = {**asdict(self.config), "method": self.name, "ipc": self.ipc}
        return SynSet.from_real(self.real, state.tensors["images"], self.real.labels[indices.to(self.real.device)],
                                method=f"coreset:{self.name}", ipc=self.ipc, config=config)
