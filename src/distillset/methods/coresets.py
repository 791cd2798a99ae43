"""Coreset baselines: SynSets whose images are real training images, selected per class.

random: class-balanced uniform sample. herding: greedily add the image that keeps the mean of the
selected embeddings closest to the class mean (argmin). kcenter: greedy farthest point (start from
the image nearest the class mean). forgetting: the images forgotten most often while a network
trained on the real data (never-learned images count as forgotten most; ties broken at random).
dq: Dataset Quantization (GraphCut bins, a uniform share of every bin; see methods.quantization).
Embeddings come from a network trained on the real training set (cached, see feature_network).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..data.real import RealData
from ..errors import unknown_name
from ..seeding import make_generator
from ..synset import SynSet
from .feature_network import embed_all, train_feature_network
from .quantization import drop_patches, select_dq


def herding(features: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of ``k`` rows chosen greedily so the running mean stays closest to the mean of all rows."""
    features = features.double()
    target = features.mean(0)
    norms = (features * features).sum(1)
    total = torch.zeros_like(target)
    available = torch.ones(features.shape[0], dtype=torch.bool, device=features.device)
    chosen = []
    for t in range(1, k + 1):
        # || target - (total + f_i)/t ||^2 = ||a||^2 - 2/t a.f_i + ||f_i||^2/t^2 with a = target - total/t
        a = target - total / t
        distance = norms / (t * t) - (2.0 / t) * (features @ a)
        distance[~available] = float("inf")
        i = int(torch.argmin(distance))
        chosen.append(i)
        total += features[i]
        available[i] = False
    return torch.tensor(chosen, dtype=torch.long)


def k_center(features: torch.Tensor, k: int) -> torch.Tensor:
    """Greedy k-center: start at the row nearest the mean, then repeatedly add the farthest row."""
    features = features.double()
    first = int(torch.argmin(((features - features.mean(0)) ** 2).sum(1)))
    chosen = [first]
    min_dist = ((features - features[first]) ** 2).sum(1)
    for _ in range(k - 1):
        i = int(torch.argmax(min_dist))
        chosen.append(i)
        min_dist = torch.minimum(min_dist, ((features - features[i]) ** 2).sum(1))
    return torch.tensor(chosen, dtype=torch.long)


def most_forgotten(events: torch.Tensor, ever_learned: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """The ``k`` most-forgotten rows; never-learned rows first; ties in a seeded random order."""
    score = events.double().cpu().clone()
    score[~ever_learned.cpu()] = float("inf")
    perm = torch.randperm(score.numel(), generator=generator)
    order = torch.argsort(score[perm], descending=True, stable=True)
    return perm[order[:k]]


def select_random(real: RealData, ipc: int, seed: int, **_: object) -> torch.Tensor:
    generator = make_generator(seed, "coreset", "random")
    return torch.cat([real.sample_indices(c, ipc, generator) for c in range(real.num_classes)])


def _per_class(real: RealData, ipc: int, pick: Callable[[torch.Tensor, int], torch.Tensor]) -> torch.Tensor:
    """Run ``pick(class_indices, ipc)`` for each class; it returns positions within the class."""
    out = []
    for c in range(real.num_classes):
        pool = real.class_indices[c]
        out.append(pool[pick(pool, ipc).to(pool.device)])
    return torch.cat(out)


def _feature_selector(rule: Callable[[torch.Tensor, int], torch.Tensor]):
    def select(real: RealData, ipc: int, seed: int, feature_model: str = "convnet", feature_epochs: int = 3, log=None, **_):
        network = train_feature_network(real, feature_model, feature_epochs, seed, log=log)
        features = embed_all(network.model, real.images)
        return _per_class(real, ipc, lambda pool, k: rule(features[pool], k))

    return select


def select_forgetting(real: RealData, ipc: int, seed: int, feature_model: str = "convnet", feature_epochs: int = 3, log=None, **_):
    network = train_feature_network(real, feature_model, feature_epochs, seed, log=log)
    generator = make_generator(seed, "coreset", "forgetting")
    return _per_class(real, ipc, lambda pool, k: most_forgotten(network.forgetting_events[pool], network.ever_learned[pool], k, generator))


def _dq_patches(real: RealData, indices: torch.Tensor, images: torch.Tensor, seed: int, feature_model: str = "convnet",
                feature_epochs: int = 3, patch_drop: float = 0.0, patch_size: int = 4, log=None, **_) -> torch.Tensor:
    """DQ's optional patch dropping on the selected images (see methods.quantization)."""
    if patch_drop <= 0:
        return images
    network = train_feature_network(real, feature_model, feature_epochs, seed, log=log)
    filled, _ = drop_patches(images, real.labels[indices], network.model, patch_size, patch_drop)
    return filled


SELECTORS: dict[str, Callable[..., torch.Tensor]] = {
    "random": select_random,
    "herding": _feature_selector(herding),
    "kcenter": _feature_selector(k_center),
    "forgetting": select_forgetting,
    "dq": select_dq,
}
# selected images a method changes after selection
POSTPROCESS: dict[str, Callable[..., torch.Tensor]] = {"dq": _dq_patches}
NEEDS_FEATURES = {"herding", "kcenter", "forgetting", "dq"}


def ipc_for_ratio(ratio: float, real: RealData) -> int:
    """Images per class that keep ``ratio`` of the training set, class-balanced (at least one)."""
    return max(1, round(ratio * real.labels.numel() / real.num_classes))


def make_coreset(method: str, real: RealData, ipc: int, seed: int = 0, config: dict | None = None, **options) -> SynSet:
    """Select ``ipc`` real images per class with ``method`` and package them as a SynSet."""
    if method not in SELECTORS:
        raise unknown_name("coreset method", method, list(SELECTORS))
    real.check_ipc(ipc)
    indices = SELECTORS[method](real, ipc, seed, **options)
    images = real.images[indices].detach()
    if method in POSTPROCESS:
        images = POSTPROCESS[method](real, indices, images, seed, **options)
    return SynSet(
        images=images.to("cpu").clone(),
        labels=real.labels[indices].detach().to("cpu").clone(),
        dataset=real.name, num_classes=real.num_classes, mean=real.mean, std=real.std,
        method=f"coreset:{method}", ipc=ipc, config=dict(config or {}, method=method, ipc=ipc, seed=seed),
        class_names=real.class_names,
    )
