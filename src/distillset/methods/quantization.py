"""Dataset Quantization (DQ; Zhou et al., ICCV 2023): bins by repeated submodular selection, then a
uniform sample of every bin.

Per class, on the embeddings of a network trained on the real data (the cached feature network of the
coresets): the class is split into ``bins`` non-overlapping bins; bin k is chosen greedily from what
the earlier bins left, maximising the GraphCut function
    f(S) = sum_{i in U} sum_{j in S} s(i, j) - lam * sum_{i in S} sum_{j in S} s(i, j)
over the remaining pool U (s: cosine similarity). The first bins hold the most representative
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
    """Split rows into ``bins`` bins (sizes differ by at most one) by repeated greedy GraphCut selection."""
    n = features.shape[0]
    if bins < 1:
        raise DistillsetError(f"DQ needs at least one bin, got {bins}")
    bins = min(bins, n)
    unit = F.normalize(features.double(), dim=1)
    similarity = unit @ unit.T
    remaining = torch.ones(n, dtype=torch.bool, device=features.device)
    sizes = [n // bins + (1 if k < n % bins else 0) for k in range(bins)]
    out = []
    diagonal = similarity.diagonal()
    for size in sizes:
        coverage = similarity[remaining].sum(0)  # sum over the current pool U of s(i, j), for every j
        penalty = torch.zeros(n, dtype=torch.float64, device=features.device)
        available = remaining.clone()
        chosen = []
        for _ in range(size):
            gain = coverage - lam * (2 * penalty + diagonal)
            gain[~available] = float("-inf")
            j = int(torch.argmax(gain))
            chosen.append(j)
            available[j] = False
            penalty += similarity[j]
        picked = torch.tensor(chosen, dtype=torch.long, device=features.device)
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
              lam: float = 1.0, log=None, **_) -> torch.Tensor:
    """Indices of ``ipc`` images per class chosen by DQ."""
    network = train_feature_network(real, feature_model, feature_epochs, seed, log=log)
    features = embed_all(network.model, real.images)
    generator = make_generator(seed, "coreset", "dq")
    out = []
    for c in range(real.num_classes):
        pool = real.class_indices[c]
        class_bins = graphcut_bins(features[pool], bins, lam)
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
    patch_drop: float = option(0.0, "fraction of the least salient patches dropped and filled", low=0, high=0.99)
    patch_size: int = option(4, "patch side in pixels", low=1)


@register_method("dq", kind="selection", modality="image", config=DQConfig, tiny={"ipc": 2, "feature_epochs": 1, "bins": 2},
                 summary="Dataset Quantization: GraphCut bins per class, a uniform share of every bin (Zhou et al., ICCV 2023)")
class DQSelection(SelectionEngine):
    name = "dq"

    def select(self) -> torch.Tensor:
        cfg = self.config
        return select_dq(self.real, self.ipc, cfg.seed, cfg.feature_model, cfg.feature_epochs, cfg.bins, log=self.log)

    def edit(self, indices: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        if self.config.patch_drop <= 0:
            return images
        filled, _ = drop_patches(images, self.real.labels[indices], self.feature_network().model, self.config.patch_size,
                                 self.config.patch_drop)
        return filled
