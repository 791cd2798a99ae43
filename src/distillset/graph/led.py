"""The Laplacian Energy Distribution (LED) of node features on a graph, and its shift under condensation.

With the normalised Laplacian L = I - D^-1/2 A D^-1/2 = U diag(lambda) U^T (eigenvalues in [0, 2]), a
graph signal X [n, F] has spectrum X_hat = U^T X; the energy share of eigenvector k is
share_k = sum_f X_hat[k, f]^2 / sum X_hat^2. Low eigenvalues carry smooth (homophilous) signal, high
ones signal that changes across edges. SGDD's argument: a condensed graph whose LED is far from the
original's trains GNNs that generalise worse across architectures.

Isolated nodes (degree 0) have no canonical normalised Laplacian entry, and condensed or selected graphs have many
(a node baseline's induced subgraph on Cora's labelled nodes is nearly edgeless), so the convention alone can set
their shift. ``isolated="one"`` uses L = I - D^-1/2 A D^-1/2 with D^-1/2 = 0 there: an isolated node is an
eigenvector of eigenvalue 1 and its energy sits mid-spectrum. ``isolated="zero"`` uses L = D^-1/2 (D - A) D^-1/2: an
isolated node has eigenvalue 0, the smooth end, as it would for the combinatorial Laplacian. The SGDD release has no
LED code and the paper does not say which it used, so reports give both.

The shift between two graphs is the 1-Wasserstein distance between their energy distributions along
the eigenvalue axis, integral over [0, 2] of |F_a(lambda) - F_b(lambda)| with F the cumulative energy
share (a distance on the eigenvalue scale, 0 for identical distributions, at most 2). The
eigendecomposition runs in float64; if it fails the error is raised, never replaced by a zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DistillsetError


@dataclass
class EnergyDistribution:
    eigenvalues: np.ndarray  # sorted ascending
    shares: np.ndarray  # energy share per eigenvalue, sums to 1

    def histogram(self, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
        edges = np.linspace(0.0, 2.0, bins + 1)
        values, _ = np.histogram(np.clip(self.eigenvalues, 0, 2), bins=edges, weights=self.shares)
        return edges, values

    @property
    def mean_eigenvalue(self) -> float:
        return float((self.eigenvalues * self.shares).sum())


ISOLATED_CONVENTIONS = ("one", "zero")


def normalized_laplacian(adjacency: torch.Tensor, isolated: str = "one") -> torch.Tensor:
    """I - D^-1/2 A D^-1/2 in float64, an isolated node's diagonal entry 1 (``isolated="one"``) or 0 (``"zero"``:
    D^-1/2 (D - A) D^-1/2). The 1e-12 floor keeps it differentiable at isolated nodes (SGDD's structure term): a
    smaller floor overflows the unused branch's gradient into NaN."""
    if isolated not in ISOLATED_CONVENTIONS:
        raise DistillsetError(f"unknown isolated-node convention '{isolated}'; use one of {', '.join(ISOLATED_CONVENTIONS)}")
    a = adjacency.to(torch.float64)
    degree = a.sum(1)
    connected = degree > 1e-12
    inv_sqrt = torch.where(connected, degree.clamp_min(1e-12).rsqrt(), torch.zeros_like(degree))
    diagonal = torch.ones_like(degree) if isolated == "one" else connected.to(torch.float64)
    return torch.diag(diagonal) - inv_sqrt[:, None] * a * inv_sqrt[None, :]


def energy_distribution(features: torch.Tensor, adjacency: torch.Tensor, isolated: str = "one") -> EnergyDistribution:
    """LED of ``features`` [n, F] on the graph with dense ``adjacency`` [n, n] (symmetric, non-negative), isolated
    nodes by the ``isolated`` convention (module docstring)."""
    if adjacency.shape[0] != features.shape[0]:
        raise DistillsetError(f"{features.shape[0]} feature rows but a {adjacency.shape[0]}-node adjacency")
    laplacian = normalized_laplacian(adjacency, isolated)
    if not torch.isfinite(laplacian).all():
        raise DistillsetError("the Laplacian has NaN or infinite entries; the adjacency is invalid")
    try:
        eigenvalues, eigenvectors = torch.linalg.eigh(laplacian)
    except RuntimeError as exc:  # no convergence: say so, never report a shift of zero
        raise DistillsetError(f"the Laplacian eigendecomposition failed ({str(exc).splitlines()[0]})") from None
    spectrum = eigenvectors.T @ features.to(torch.float64)
    energy = (spectrum ** 2).sum(1)
    total = energy.sum()
    if not total > 0:
        raise DistillsetError("the node features carry no energy (all zero); the LED is undefined")
    return EnergyDistribution(eigenvalues.cpu().numpy(), (energy / total).cpu().numpy())


_ORIGINAL_CACHE: dict[tuple, EnergyDistribution] = {}


def graph_led(data, isolated: str = "one") -> EnergyDistribution:
    """The LED of a real graph (a :class:`GraphData`), computed once per process and convention: its dense
    eigendecomposition is the expensive part (seconds for Cora's 2,708 nodes)."""
    key = (data.name, data.num_nodes, int(data.edge_index.shape[1]), float(data.features.sum()), isolated)
    if key not in _ORIGINAL_CACHE:
        _ORIGINAL_CACHE[key] = energy_distribution(data.features.cpu(), dense_adjacency(data.edge_index, data.num_nodes),
                                                   isolated)
    return _ORIGINAL_CACHE[key]


def led_shifts(data, features: torch.Tensor, adjacency: torch.Tensor) -> dict[str, float]:
    """The LED shift of a condensed graph against ``data`` under both isolated-node conventions:
    ``{"one": ..., "zero": ...}``."""
    return {c: led_shift(graph_led(data, c), energy_distribution(features, adjacency, c)) for c in ISOLATED_CONVENTIONS}


def dense_adjacency(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    a = torch.zeros(num_nodes, num_nodes, dtype=torch.float64)
    a[edge_index[0].cpu(), edge_index[1].cpu()] = 1.0
    return a


def led_shift(a: EnergyDistribution, b: EnergyDistribution) -> float:
    """1-Wasserstein distance between two energy distributions on the eigenvalue axis [0, 2]."""
    grid = np.union1d(np.clip(a.eigenvalues, 0, 2), np.clip(b.eigenvalues, 0, 2))
    grid = np.union1d(grid, [0.0, 2.0])

    def cdf(d: EnergyDistribution) -> np.ndarray:
        order = np.argsort(d.eigenvalues, kind="stable")
        lam, cum = np.clip(d.eigenvalues[order], 0, 2), np.cumsum(d.shares[order])
        return np.concatenate([[0.0], cum])[np.searchsorted(lam, grid[:-1], side="right")]

    return float(np.sum(np.abs(cdf(a) - cdf(b)) * np.diff(grid)))


def plot_distributions(distributions: dict[str, EnergyDistribution], path: str | Path, bins: int = 20) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    width = 2.0 / bins / (len(distributions) + 1)
    for i, (name, dist) in enumerate(distributions.items()):
        edges, values = dist.histogram(bins)
        ax.bar(edges[:-1] + i * width, values, width=width, align="edge", label=name)
    ax.set_xlabel("Laplacian eigenvalue")
    ax.set_ylabel("share of feature energy")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_suffix(".tmp" + path.suffix)
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
