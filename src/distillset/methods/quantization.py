"""Dataset Quantization (DQ; Zhou et al., ICCV 2023): bins by repeated submodular selection, then a
uniform sample of every bin.

Per class, on the last-layer gradient embeddings g_i = [b_i, b_i (x) e_i] of a pre-trained network (b_i =
softmax(z_i) - onehot(y_i), e_i the classifier's input; DQ's code takes them from DeepCore's GraphCut):
by default the cached feature network of the coresets, trained on the same data (DQ used an
ImageNet-pretrained ResNet-18, not available offline), or the most-trained member of a ``train-pool`` folder
(``feature_pool``; chosen by training epochs, never by test accuracy). The class is split into ``bins`` non-overlapping bins; bin k is chosen greedily from what
the earlier bins left, maximising the GraphCut function
    f(S) = sum_{i in U} sum_{j in S} s(i, j) - lam * sum_{i in S} sum_{j in S} s(i, j)
over the remaining pool U (s: cosine similarity; for gradient embeddings from their Gram matrix,
<g_i, g_j> = <b_i, b_j> (1 + <e_i, e_j>), without forming the K (D + 1)-wide vectors). The first bins hold the most representative
images, later ones increasingly diverse ones; sampling the same fraction from EVERY bin keeps both,
which is DQ's argument for a subset that serves any architecture. The marginal gain of j,
sum_U s(., j) - lam * (2 * sum_S s(., j) + s(j, j)), is updated for all candidates at once after each
pick (one vector operation, no Python loop over candidates).

Patch dropping (optional): every selected image is cut into patches, the least salient ones (by the
feature network's input-gradient saliency) are dropped and filled in. The paper reconstructed them
with a pretrained MAE, which is not available offline; ``fill`` is a hook for such a model, and the
default fill is the image blurred by averaging over a 2-patch window (documented as a simple stand-in:
it keeps low frequencies of the dropped area, not its content).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data.real import RealData
from ..errors import DistillsetError
from ..seeding import make_generator
from .contract import option
from .feature_network import embed_all, train_feature_network
from .registry import register_method
from .selection import FeatureSelectionConfig, SelectionEngine

Fill = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (images [N,C,H,W], keep mask [N,1,H,W]) -> images


def graphcut_bins(features: torch.Tensor, bins: int, lam: float = 1.0) -> list[torch.Tensor]:
    """Split rows into ``bins`` bins (sizes differ by at most one) by repeated greedy GraphCut selection
    on the cosine similarity of ``features``."""
    unit = F.normalize(features.double(), dim=1)
    return graphcut_bins_from_similarity(unit @ unit.T, bins, lam)


def gradient_similarity(logits: torch.Tensor, labels: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of last-layer gradient embeddings, DQ's (DeepCore's) features.

    g_i = [b_i, b_i (x) e_i] with b_i = d loss / d logits = softmax(z_i) - onehot(y_i) (the bias gradient) and
    e_i the classifier's input (b_i (x) e_i is the weight gradient). The Gram matrix never needs the
    K(D+1)-wide vectors: <g_i, g_j> = <b_i, b_j> (1 + <e_i, e_j>)."""
    b = torch.softmax(logits.double(), dim=1) - F.one_hot(labels, logits.shape[1]).double()
    e = embeddings.double()
    gram = (b @ b.T) * (1 + e @ e.T)
    norm = gram.diagonal().clamp_min(1e-24).sqrt()
    return gram / (norm[:, None] * norm[None, :])


def graphcut_bins_from_similarity(similarity: torch.Tensor, bins: int, lam: float = 1.0) -> list[torch.Tensor]:
    """The bins of :func:`graphcut_bins` from a precomputed similarity matrix."""
    n = similarity.shape[0]
    if bins < 1:
        raise DistillsetError(f"DQ needs at least one bin, got {bins}")
    bins = min(bins, n)
    device = similarity.device
    remaining = torch.ones(n, dtype=torch.bool, device=device)
    sizes = [n // bins + (1 if k < n % bins else 0) for k in range(bins)]
    out = []
    diagonal = similarity.diagonal()
    for size in sizes:
        coverage = similarity[remaining].sum(0)  # sum over the current pool U of s(i, j), for every j
        penalty = torch.zeros(n, dtype=torch.float64, device=device)
        available = remaining.clone()
        chosen = []
        for _ in range(size):
            gain = coverage - lam * (2 * penalty + diagonal)
            gain[~available] = float("-inf")
            j = int(torch.argmax(gain))
            chosen.append(j)
            available[j] = False
            penalty += similarity[j]
        picked = torch.tensor(chosen, dtype=torch.long, device=device)
        remaining[picked] = False
        out.append(picked)
    return out


def sample_bins(bin_list: list[torch.Tensor], count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` rows spread evenly over the bins (the same share of every bin), uniformly within each."""
    total = sum(b.numel() for b in bin_list)
    if count > total:
        raise DistillsetError(f"cannot sample {count} of {total} rows")
    # largest-remainder apportionment of count proportional to the bin sizes
    exact = [count * b.numel() / total for b in bin_list]
    shares = [int(e) for e in exact]
    for k in sorted(range(len(bin_list)), key=lambda k: exact[k] - shares[k], reverse=True)[:count - sum(shares)]:
        shares[k] += 1
    picks = [b[torch.randperm(b.numel(), generator=generator)[:s].to(b.device)] for b, s in zip(bin_list, shares) if s]
    return torch.cat(picks) if picks else torch.zeros(0, dtype=torch.long)


def select_dq(real: RealData, ipc: int, seed: int, feature_model: str = "convnet", feature_epochs: int = 3, bins: int = 10,
              lam: float = 1.0, embedding: str = "gradient", network: torch.nn.Module | None = None, log=None, **_) -> torch.Tensor:
    """Indices of ``ipc`` images per class chosen by DQ, on ``embedding`` "gradient" (DQ's last-layer gradient
    embeddings) or "penultimate" (the classifier's input) of ``network`` (default: the cached feature network)."""
    if network is None:
        network = train_feature_network(real, feature_model, feature_epochs, seed, log=log).model
    embeddings = embed_all(network, real.images)
    if embedding == "gradient":
        with torch.inference_mode():
            network.eval()
            logits = torch.cat([network(real.images[s:s + 512]) for s in range(0, real.images.shape[0], 512)])
    generator = make_generator(seed, "coreset", "dq")
    out = []
    for c in range(real.num_classes):
        pool = real.class_indices[c]
        if embedding == "gradient":
            similarity = gradient_similarity(logits[pool], real.labels[pool], embeddings[pool])
            class_bins = graphcut_bins_from_similarity(similarity, bins, lam)
        else:
            class_bins = graphcut_bins(embeddings[pool], bins, lam)
        out.append(pool[sample_bins(class_bins, ipc, generator).to(pool.device)])
    return torch.cat(out)


def blur_fill(images: torch.Tensor, keep: torch.Tensor, patch: int = 4) -> torch.Tensor:
    """The default fill: dropped pixels take the image averaged over a (2 patch)-wide window."""
    k = 2 * patch + 1
    blurred = F.avg_pool2d(F.pad(images, (patch, patch, patch, patch), mode="replicate"), k, stride=1)
    return torch.where(keep, images, blurred)


def drop_patches(images: torch.Tensor, labels: torch.Tensor, model: torch.nn.Module, patch: int = 4, drop: float = 0.25,
                 fill: Fill | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace the ``drop`` fraction of least salient patches of every image; returns (images, keep mask).

    Saliency of a patch: the summed |d loss / d x| of the feature network over the patch's pixels."""
    if not 0 <= drop < 1:
        raise DistillsetError(f"the patch drop fraction must be in [0, 1), got {drop}")
    n, _, h, w = images.shape
    if h % patch or w % patch:
        raise DistillsetError(f"patch size {patch} does not divide the {h}x{w} images; choose a divisor")
    x = images.detach().clone().requires_grad_(True)
    model.eval()
    loss = F.cross_entropy(model(x), labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    saliency = F.avg_pool2d(grad.abs().sum(1, keepdim=True), patch) * patch * patch  # [N, 1, H/p, W/p]
    flat = saliency.flatten(1)
    dropped = int(drop * flat.shape[1])
    keep_patches = torch.ones_like(flat, dtype=torch.bool)
    if dropped:
        lowest = flat.argsort(dim=1)[:, :dropped]
        keep_patches.scatter_(1, lowest, False)
    keep = keep_patches.view_as(saliency).repeat_interleave(patch, 2).repeat_interleave(patch, 3)
    filled = (fill or (lambda im, m: blur_fill(im, m, patch)))(images.detach(), keep)
    return filled, keep


@dataclass
class DQConfig(FeatureSelectionConfig):
    bins: int = option(10, "GraphCut bins per class", low=1)
    embedding: str = option("gradient", "the features GraphCut compares: DQ's last-layer gradient embeddings, or the "
                                        "penultimate embeddings (this library's choice before 2026-12-03)",
                            choices=("gradient", "penultimate"))
    feature_pool: str = option("", "a pre-trained network from a `distillset train-pool` folder (or member spec, as "
                                   "--guide-models takes): its most-trained member; '' = the cached feature network")
    patch_drop: float = option(0.0, "fraction of the least salient patches dropped and filled", low=0, high=0.99)
    patch_size: int = option(4, "patch side in pixels", low=1)


@register_method("dq", kind="selection", modality="image", config=DQConfig, tiny={"ipc": 2, "feature_epochs": 1, "bins": 2},
                 summary="Dataset Quantization: GraphCut bins per class, a uniform share of every bin (Zhou et al., ICCV 2023)")
class DQSelection(SelectionEngine):
    name = "dq"

    def network(self) -> torch.nn.Module:
        """The pre-trained network whose embeddings DQ bins: a pool's most-trained member, else the feature network."""
        cfg = self.config
        if cfg.feature_pool:
            from .guidance import most_trained_member

            name, net = most_trained_member(cfg.feature_pool, self.real.name, self.real.shape, self.real.num_classes,
                                            self.real.device)
            if self.log:
                self.log(f"dq: embeddings of pool member {name}")
            return net
        return self.feature_network().model

    def select(self) -> torch.Tensor:
        cfg = self.config
        return select_dq(self.real, self.ipc, cfg.seed, cfg.feature_model, cfg.feature_epochs, cfg.bins,
                         embedding=cfg.embedding, network=self.network(), log=self.log)

    def edit(self, indices: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        if self.config.patch_drop <= 0:
            return images
        filled, _ = drop_patches(images, self.real.labels[indices], self.network(), self.config.patch_size,
                                 self.config.patch_drop)
        return filled
