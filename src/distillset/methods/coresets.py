"""Coreset baselines: SynSets whose images are real training images, selected per class.

random: class-balanced uniform sample. herding: greedily add the image that keeps the mean of the
selected embeddings closest to the class mean (argmin). kcenter: greedy farthest point (start from
the image nearest the class mean). forgetting: the images forgotten most often while a network
trained on the real data (ties broken at random). A forgetting event is a presentation at which an image
is misclassified after the one before classified it correctly. Images the network never classified
correctly have no event to count: Toneva et al.'s code ranks them first, as if forgotten at every
presentation (``never_learned="most"``, the default); DeepCore, a later coreset library co-authored by
the DC paper's first author, leaves them at zero events, ranked with the unforgettable ones
(``never_learned="zero"``). At one image per class the two differ most: on MNIST many never-learned
images show another class's digit (BENCHMARKS.md, "Forgetting on MNIST").
Embeddings come from a network trained on the real training set (cached, see feature_network).
Dataset Quantization, another selection method, lives in methods.quantization.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.real import RealData
from ..seeding import make_generator
from .contract import EvaluationSpec, option
from .feature_network import embed_all
from .registry import register_method
from .selection import FeatureSelectionConfig, SelectionConfig, SelectionEngine


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
    """Greedy k-center: start at the row nearest the mean, then repeatedly add the farthest row.

    ``k`` distinct rows: a chosen row is never picked again, also where rows repeat (identical embeddings sit at
    distance 0 from the selection, as the chosen rows do, and a plain argmax over the ties could return a chosen
    row; with k = the pool size every row is then taken, as it must be)."""
    features = features.double()
    i = int(torch.argmin(((features - features.mean(0)) ** 2).sum(1)))
    chosen = []
    min_dist = torch.full((features.shape[0],), float("inf"), dtype=features.dtype, device=features.device)
    for step in range(k):
        chosen.append(i)
        if step == k - 1:  # the last pick needs no distances after it
            break
        min_dist = torch.minimum(min_dist, ((features - features[i]) ** 2).sum(1))
        min_dist[i] = -1.0  # chosen: below every distance, never the argmax again
        i = int(torch.argmax(min_dist))
    return torch.tensor(chosen, dtype=torch.long)


NEVER_LEARNED = ("most", "zero")  # where never-learned images rank: Toneva et al.'s code, DeepCore's


def most_forgotten(events: torch.Tensor, ever_learned: torch.Tensor, k: int, generator: torch.Generator,
                   never_learned: str = "most") -> torch.Tensor:
    """The ``k`` most-forgotten rows; ties in a seeded random order. Never-learned rows rank first
    (``never_learned="most"``, Toneva et al.) or score zero events (``"zero"``, DeepCore)."""
    if never_learned not in NEVER_LEARNED:
        raise ValueError(f"never_learned must be 'most' or 'zero', not {never_learned!r}")
    score = events.double().cpu().clone()
    score[~ever_learned.bool().cpu()] = float("inf") if never_learned == "most" else 0.0
    perm = torch.randperm(score.numel(), generator=generator)
    order = torch.argsort(score[perm], descending=True, stable=True)
    return perm[order[:k]]


def per_class(real: RealData, ipc: int, pick) -> torch.Tensor:
    """Run ``pick(class_indices, ipc)`` for each class; it returns positions within the class."""
    out = []
    for c in range(real.num_classes):
        pool = real.class_indices[c]
        out.append(pool[pick(pool, ipc).to(pool.device)])
    return torch.cat(out)


TINY = {"ipc": 2, "feature_epochs": 1}
EVALUATION = EvaluationSpec(augment="dc")  # the DC paper evaluates its Table 1 baselines with its own protocol


@register_method("random", kind="selection", modality="image", config=SelectionConfig, tiny={"ipc": 2}, evaluation=EVALUATION,
                 summary="class-balanced uniform sample of real images")
class RandomSelection(SelectionEngine):
    name = "random"

    def select(self) -> torch.Tensor:
        generator = make_generator(self.config.seed, "coreset", "random")
        return self.real.sample_every_class(self.ipc, generator)


class FeatureSelection(SelectionEngine):
    """A selection ranked on the embeddings of the cached feature network."""

    rule: staticmethod

    def select(self) -> torch.Tensor:
        features = embed_all(self.feature_network().model, self.real.images)
        return per_class(self.real, self.ipc, lambda pool, k: type(self).rule(features[pool], k))


@register_method("herding", kind="selection", modality="image", config=FeatureSelectionConfig, tiny=TINY, evaluation=EVALUATION,
                 summary="greedy herding: keep the selected embeddings' mean closest to the class mean (Welling, 2009)")
class HerdingSelection(FeatureSelection):
    name = "herding"
    rule = staticmethod(herding)


@register_method("kcenter", kind="selection", modality="image", config=FeatureSelectionConfig, tiny=TINY, evaluation=EVALUATION,
                 summary="greedy k-center: repeatedly add the embedding farthest from the selection (Sener & Savarese, 2018)")
class KCenterSelection(FeatureSelection):
    name = "kcenter"
    rule = staticmethod(k_center)


@dataclass
class ForgettingConfig(FeatureSelectionConfig):
    """Forgetting events need a whole training run to accumulate (Toneva et al. count them over the full schedule,
    200 epochs on CIFAR-10); 3 epochs left counts of 0-2, mostly ties. 20 epochs is this library's schedule for it."""

    feature_epochs: int = option(20, "epochs of the network whose forgetting events are counted", low=1)
    never_learned: str = option("most", "where images never classified correctly rank: 'most' forgotten (Toneva et al.'s "
                                "code) or 'zero' events (DeepCore's)", choices=NEVER_LEARNED)


@register_method("forgetting", kind="selection", modality="image", config=ForgettingConfig, tiny=TINY,
                 evaluation=EVALUATION,
                 summary="the images forgotten most often while a network trains on the real data (Toneva et al., 2019)")
class ForgettingSelection(FeatureSelection):
    name = "forgetting"

    def select(self) -> torch.Tensor:
        network = self.feature_network()
        generator = make_generator(self.config.seed, "coreset", "forgetting")
        return per_class(self.real, self.ipc,
                         lambda pool, k: most_forgotten(network.forgetting_events[pool], network.ever_learned[pool], k, generator,
                                                        self.config.never_learned))
