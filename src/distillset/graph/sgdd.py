"""SGDD (Yang et al., NeurIPS 2023) as released (RingBDStack/SGDD): GCond with a graphon-gated structure
generator, an optimal-transport structure term and a label-smoothness regulariser.

What the release does, and this module does too:

* Structure (``models/IGNR.py``): the n synthetic nodes are class-ordered, and pair (i, j) has a FIXED position
  on a grid, (2i/(n-1) - 1, 2j/(n-1) - 1). Two three-layer networks run over all n^2 pairs: a graphon network
  g of the position and a pair network c of the features [x_i, x_j] (linear, BatchNorm, ReLU blocks of width
  128, then a linear output). The pair network gates the graphon network after each hidden block
  (g <- g * c) and the outputs mix, logit = (1 - e) g + e c with e = 0.5; A' = sigmoid of the symmetrised
  logits, zero diagonal.
* Label smoothness: beta * tr(Y'^T L_sym(A') Y'), Y' the one-hot synthetic labels and
  L_sym = D^-1/2 (D - A') D^-1/2, added to the matching loss in every epoch (beta 0.5).
* Optimal transport between the graphs' signal distributions (after GOT, Maretic et al. 2019): a learned
  plan P [n_orig, n] (|P| made doubly stochastic by 5 Sinkhorn sweeps) carries the original graph onto the
  synthetic one, and the term is the 2-Wasserstein distance between the Gaussians N(0, Sigma') and
  N(0, P^T Sigma P):  tr(Sigma') + tr(P^T Sigma P) - 2 tr((Sigma'^1/2 P^T Sigma P Sigma'^1/2)^1/2),
  updated in structure epochs only, as the release does.
* Schedule: GCond's (outer 20 / inner 15, 10 structure epochs then 40 feature epochs, Adam 1e-4, SGC
  matching network), for 2000 epochs.

Where this module deliberately differs from the release (each a flaw there):

* Laplacians where Laplacians belong: the release passes the original graph's normalised ADJACENCY as its
  "Lx" and the synthetic adjacency itself as "Ly". Here Sigma = (L + gamma I)^-1 for each graph's normalised
  Laplacian L = I - D^-1/2 A D^-1/2, the covariance of a smooth graph signal (gamma = 0.01 regularises the
  null space; the release instead drops singular values below 0.009, a non-differentiable cut).
* The normalised transport plan is the one used: the release Sinkhorn-normalises P and then multiplies with the
  raw P.
* The trace term is the Gaussian W2's: the release scales tr(Sigma') by n and drops tr(P^T Sigma P).
* No silent zero: the release wraps the term in ``try/except`` and returns 0 on any failure (e.g. a failed
  eigendecomposition); here a failure stops the run with its reason.
* The weight: the release's ``opt_scale`` is 1e-10, which switches the term off. Here ``ot_weight`` defaults to
  1 until a weight is chosen on the validation split (``benchmarks/sgdd_ot_weight.py --method sgdd``); the
  README records the choice.
* The generator's BatchNorm normalises with the current pairs' statistics in every mode (as this library's
  GCond), so A' is one function of X'; the release uses running statistics when it saves the graph.

Cost: the original graph's Sigma is formed once (a dense float64 inverse of its Laplacian, at most
``ot_max_nodes`` nodes, a seeded subset beyond that as the release's 5,000-node sample), and each structure step
adds one n_orig^2 n product for P^T Sigma P (its gradient reuses it: ``symmetric_congruence``) and O(n^3)
for the synthetic side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DistillsetError
from ..methods.contract import option
from ..methods.registry import register_method
from ..seeding import make_generator
from .data import GraphData
from .gcond import GRAPH_EVALUATION, TINY, GCond, GCondConfig
from .led import normalized_laplacian


class GraphonGatedGenerator(nn.Module):
    """SGDD's IGNR structure generator (module docstring). ``plan_rows``: original nodes of the transport plan."""

    def __init__(self, nodes: int, features: int, hidden: int = 128, mix: float = 0.5, plan_rows: int = 0,
                 running_stats: bool = False) -> None:
        super().__init__()
        self.mix = mix
        steps = torch.arange(nodes, dtype=torch.float32) / max(nodes - 1, 1)
        grid = torch.stack(torch.meshgrid(steps, steps, indexing="ij"), dim=-1).reshape(nodes * nodes, 2)
        self.register_buffer("grid", 2 * grid - 1, persistent=False)

        def block(width_in: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(width_in, hidden), nn.BatchNorm1d(hidden, track_running_stats=running_stats), nn.ReLU())

        # the pair network's first layer on [x_i, x_j] split in two, so the n^2 x 2F input is never built
        self.pair_left, self.pair_right = nn.Linear(features, hidden), nn.Linear(features, hidden, bias=False)
        self.pair_norm = nn.Sequential(nn.BatchNorm1d(hidden, track_running_stats=running_stats), nn.ReLU())
        self.pair_hidden, self.pair_out = block(hidden), nn.Linear(hidden, 1)
        self.graphon_in, self.graphon_hidden, self.graphon_out = block(2), block(hidden), nn.Linear(hidden, 1)
        self.plan = nn.Parameter(torch.rand(plan_rows, nodes)) if plan_rows else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        c = self.pair_norm((self.pair_left(x)[:, None, :] + self.pair_right(x)[None, :, :]).reshape(n * n, -1))
        g = self.graphon_in(self.grid) * c
        c = self.pair_hidden(c)
        g = self.graphon_hidden(g) * c
        logits = ((1 - self.mix) * self.graphon_out(g) + self.mix * self.pair_out(c)).reshape(n, n)
        adjacency = torch.sigmoid((logits + logits.T) / 2)
        return adjacency * (1 - torch.eye(n, device=x.device))


def induced_adjacency(data: GraphData, nodes: torch.Tensor) -> torch.Tensor:
    """The dense float64 adjacency of the subgraph ``data`` induces on ``nodes`` (never the whole graph's)."""
    position = torch.full((data.num_nodes,), -1, dtype=torch.long)
    position[nodes.cpu()] = torch.arange(nodes.numel())
    src, dst = position[data.edge_index[0].cpu()], position[data.edge_index[1].cpu()]
    inside = (src >= 0) & (dst >= 0)
    adjacency = torch.zeros(nodes.numel(), nodes.numel(), dtype=torch.float64)
    adjacency[src[inside], dst[inside]] = 1.0
    return adjacency


def sinkhorn(plan: torch.Tensor, sweeps: int) -> torch.Tensor:
    """|plan| made (nearly) doubly stochastic by alternate row and column normalisation; the last sweep leaves
    every column summing to 1 (each synthetic node receives one unit of original mass)."""
    p = plan.abs()
    for _ in range(sweeps):
        p = p / p.sum(dim=1, keepdim=True).clamp_min(1e-30)
        p = p / p.sum(dim=0, keepdim=True).clamp_min(1e-30)
    return p


class _SymmetricCongruence(torch.autograd.Function):
    """P^T S P for a constant symmetric S, differentiable in P, whose backward reuses the forward's P^T S."""

    @staticmethod
    def forward(ctx, plan: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        left = plan.T @ sigma  # the one n^2 k product
        ctx.save_for_backward(left)
        return left @ plan

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (left,) = ctx.saved_tensors
        return left.T @ (grad + grad.T), None  # d tr(G^T P^T S P) / dP = S P (G + G^T), and S P = (P^T S)^T


def symmetric_congruence(plan: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """P^T S P for a symmetric S that takes no gradient. Autograd would spend a second n^2 k product on the
    gradient (S^T times the upstream gradient, with S read in its slow, transposed order); with S = S^T the
    gradient S P (G + G^T) is the forward's P^T S, transposed, times a k x k matrix. Equal to autograd's up to
    rounding (tested); S must be exactly symmetric (see :func:`signal_covariance`)."""
    return _SymmetricCongruence.apply(plan, sigma)


def signal_covariance(adjacency: torch.Tensor, ridge: float) -> torch.Tensor:
    """(L + ridge I)^-1 in float64 for the normalised Laplacian L of ``adjacency``: the covariance of a smooth
    signal on the graph (differentiable in the adjacency)."""
    laplacian = normalized_laplacian(adjacency)
    eye = torch.eye(laplacian.shape[0], dtype=laplacian.dtype, device=laplacian.device)
    return torch.linalg.inv(laplacian + ridge * eye)


def gaussian_w2(sigma_syn: torch.Tensor, sigma_orig_projected: torch.Tensor) -> torch.Tensor:
    """Squared 2-Wasserstein distance between N(0, A) and N(0, B): tr A + tr B - 2 tr (A^1/2 B A^1/2)^1/2. The
    cross term is the sum of sqrt(eigenvalues of C^T A C) with B = C C^T (Cholesky), which has the same spectrum
    as A^1/2 B A^1/2 and a gradient even where eigenvalues repeat (only eigenvalues are differentiated)."""
    b = (sigma_orig_projected + sigma_orig_projected.T) / 2  # symmetric up to rounding; Cholesky reads one triangle
    eye = torch.eye(b.shape[0], dtype=b.dtype, device=b.device)
    factor = torch.linalg.cholesky(b + 1e-10 * b.diagonal().mean() * eye)
    eigenvalues = torch.linalg.eigvalsh(factor.T @ sigma_syn @ factor)
    cross = eigenvalues.clamp_min(0).add(1e-12).sqrt().sum()
    return sigma_syn.diagonal().sum() + b.diagonal().sum() - 2 * cross


@dataclass
class SGDDConfig(GCondConfig):
    """GCond's options with SGDD's release defaults (2000 epochs) and its structure terms."""

    METHOD: ClassVar[str] = "sgdd"

    epochs: int = option(2000, "condensation epochs, each with a fresh matching network (SGDD: 2000)", low=1)
    beta: float = option(0.5, "weight of the label-smoothness term tr(Y'^T L_sym Y') (SGDD: 0.5)", low=0)
    mix: float = option(0.5, "share of the pair network in the generator's logits (SGDD's ep_ratio)", low=0, high=1)
    ot_weight: float = option(1.0, "weight of the optimal-transport structure term (0 switches it off; the release's "
                                   "1e-10 is off in effect)", low=0)
    sinkhorn_sweeps: int = option(5, "Sinkhorn sweeps normalising the transport plan (SGDD: 5)", low=1)
    ot_ridge: float = option(0.01, "gamma of the signal covariances (L + gamma I)^-1", low=0, low_open=True)
    ot_max_nodes: int = option(5000, "original nodes in the transport (a seeded subset beyond; SGDD: 5000)", low=2)


@register_method("sgdd", kind="condensation", modality="graph", config=SGDDConfig, size="reduction", tiny=TINY,
                 evaluation=GRAPH_EVALUATION,
                 summary="SGDD as released: graphon-gated structure, optimal transport to the original graph, label "
                         "smoothness (Yang et al., NeurIPS 2023)")
class SGDD(GCond):
    """The released SGDD over GCond's loop (module docstring for what differs from the release and why)."""

    def __init__(self, data: GraphData, config: SGDDConfig) -> None:
        self.orig_nodes = self._transport_nodes(data, config)
        super().__init__(data, config)
        self.one_hot = F.one_hot(self.labels, data.num_classes).to(torch.float64)
        self.sigma_orig = None
        if config.ot_weight > 0 and self.pge is not None:
            sigma = signal_covariance(induced_adjacency(data, self.orig_nodes), config.ot_ridge)
            # exactly symmetric (the inverse is so up to rounding), as symmetric_congruence's gradient assumes
            self.sigma_orig = ((sigma + sigma.T) / 2).to(data.features.device)
            if not torch.isfinite(self.sigma_orig).all():
                raise DistillsetError("the original graph's signal covariance is not finite; raise ot_ridge")

    @staticmethod
    def _transport_nodes(data: GraphData, config: SGDDConfig) -> torch.Tensor:
        if data.num_nodes <= config.ot_max_nodes:
            return torch.arange(data.num_nodes)
        generator = make_generator(config.seed, "sgdd", "transport-nodes")
        return torch.randperm(data.num_nodes, generator=generator)[:config.ot_max_nodes].sort().values

    def make_generator(self) -> nn.Module:
        cfg = self.config
        rows = int(self.orig_nodes.numel()) if cfg.ot_weight > 0 else 0
        return GraphonGatedGenerator(sum(self.counts), self.data.features.shape[1], cfg.pge_hidden, cfg.mix, rows,
                                     cfg.pge_running_stats)

    def regularization_loss(self, adjacency: torch.Tensor) -> torch.Tensor:
        if self.config.beta == 0:
            return adjacency.new_zeros(())
        laplacian = normalized_laplacian(adjacency, isolated="zero")  # D^-1/2 (D - A') D^-1/2
        smoothness = (self.one_hot * (laplacian @ self.one_hot)).sum()
        return (self.config.beta * smoothness).to(adjacency.dtype)

    def structure_loss(self, adjacency: torch.Tensor) -> torch.Tensor:
        if self.sigma_orig is None:
            return adjacency.new_zeros(())
        plan = sinkhorn(self.pge.plan.to(torch.float64), self.config.sinkhorn_sweeps)
        projected = symmetric_congruence(plan, self.sigma_orig)
        try:
            distance = gaussian_w2(signal_covariance(adjacency, self.config.ot_ridge), projected)
        except RuntimeError as exc:  # a failed factorisation: say so, never continue with a zero
            raise DistillsetError(f"SGDD's optimal-transport term failed ({str(exc).splitlines()[0]})") from None
        if not torch.isfinite(distance):
            raise FloatingPointError("the optimal-transport structure term is not finite")
        return (self.config.ot_weight * distance).to(adjacency.dtype)
