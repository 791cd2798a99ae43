"""A teacher for knowledge-distillation evaluation: an ensemble of pre-trained networks (``distillset
train-pool`` members, or single member files) whose mean logits relabel every augmented training batch.

This is how SRe2L, RDED and DD-Ranking evaluate sets: the student learns from the teacher's view of each
augmented image rather than from the set's fixed labels. The teacher must have been trained on the set's
dataset, in the set's input space (the same normalisation, no ZCA): a teacher for other data would label
garbage, so it is refused.
"""

from __future__ import annotations

import torch

from ..errors import DistillsetError
from ..pool import load_members, read_pool_index, resolve_pool
from ..synset import SynSet


class Teacher:
    """Mean logits of frozen networks in eval mode."""

    def __init__(self, members: list[tuple[str, torch.nn.Module]]) -> None:
        if not members:
            raise DistillsetError("the teacher selects no pool member")
        self.members = members
        self.names = [name for name, _ in members]

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(x) for _, net in self.members]).mean(0)


def load_teacher(spec: str, synset: SynSet, device) -> Teacher:
    """The pool members ``spec`` names, checked against the set (dataset, shape, classes, normalisation, no ZCA)."""
    if synset.zca_mean is not None:
        raise DistillsetError("this set lives in ZCA-whitened space and pool networks are trained on normalised images; "
                              "a teacher cannot label it (use --labels stored or hard)")
    for folder in {entry[0] for entry in resolve_pool(spec)}:
        index = read_pool_index(folder)
        if index["dataset"] != synset.dataset:
            raise DistillsetError(f"pool {folder} was trained on {index['dataset']}, not {synset.dataset}: a teacher must "
                                  f"know the set's data; train one with `distillset train-pool --dataset {synset.dataset}`")
        if "mean" in index and not (_close(index["mean"], synset.mean) and _close(index["std"], synset.std)):
            raise DistillsetError(f"pool {folder} was trained with mean {index['mean']} / std {index['std']}, but the set's "
                                  f"images are normalised with {list(synset.mean)} / {list(synset.std)}; train a pool on "
                                  f"{synset.dataset} with its default statistics")
    members = load_members(spec, synset.dataset, synset.shape, synset.num_classes, device)
    return Teacher(members)


def _close(a, b) -> bool:
    return len(a) == len(b) and all(abs(float(x) - float(y)) < 1e-6 for x, y in zip(a, b))
