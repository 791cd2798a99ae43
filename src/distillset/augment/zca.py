"""ZCA whitening, fitted on the raw [0, 1] training pixels (``RealData.whitened``), as MTT and DATM fit kornia's.

Whitened inputs decorrelate pixels, which MTT and its successors found to speed up and stabilise
matching. The transform is stored with the SynSet (``zca_mean``, ``zca_matrix``; DESIGN.md) so that
the evaluator puts real test images through exactly the same pipeline: x = (flatten(x) - m) @ W.T.

W = U diag(1 / sqrt(s + eps)) U^T from the eigendecomposition of the pixel covariance, computed in
float64 (the covariance of 3072 CIFAR pixels is ill-conditioned in float32); eps = 0.1 as the papers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import DistillsetError


@dataclass
class ZCA:
    mean: torch.Tensor  # float32 [D]
    matrix: torch.Tensor  # float32 [D, D], symmetric

    @classmethod
    def fit(cls, images: torch.Tensor, eps: float = 0.1, chunk: int = 8192) -> "ZCA":
        """Fit on ``images`` [N, C, H, W]; the covariance (unbiased, as kornia's) is accumulated in chunks."""
        if images.dim() != 4 or images.shape[0] < 2:
            raise DistillsetError(f"ZCA needs a batch of at least 2 images [N, C, H, W], got {list(images.shape)}")
        if eps <= 0:
            raise DistillsetError(f"ZCA eps must be positive, got {eps}")
        n, d = images.shape[0], images[0].numel()
        flat = images.reshape(n, d)
        mean = flat.to(torch.float64).mean(0)
        cov = torch.zeros(d, d, dtype=torch.float64, device=images.device)
        for start in range(0, n, chunk):
            block = flat[start:start + chunk].to(torch.float64) - mean
            cov.addmm_(block.T, block)
        cov /= n - 1
        if not torch.isfinite(cov).all():
            raise DistillsetError("the training images contain NaN or infinite values; ZCA cannot be fitted")
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)
        scale = (eigenvalues.clamp_min(0) + eps).rsqrt()
        matrix = (eigenvectors * scale) @ eigenvectors.T
        return cls(mean.to(torch.float32), matrix.to(torch.float32))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Whiten [N, C, H, W] images (same shape out)."""
        flat = images.reshape(images.shape[0], -1)
        if flat.shape[1] != self.mean.numel():
            raise DistillsetError(f"ZCA was fitted on {self.mean.numel()} values per image, these have {flat.shape[1]}")
        mean, matrix = self.mean.to(images.device), self.matrix.to(images.device)
        return ((flat - mean) @ matrix.T).reshape(images.shape)

    def to(self, device: str | torch.device) -> "ZCA":
        return ZCA(self.mean.to(device), self.matrix.to(device))
