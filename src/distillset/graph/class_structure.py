"""How a condensed graph's edges sit relative to its classes: the check that tells a structure that carries the labels
(disjoint class cliques) from one that carries the data's geometry.

A GCN on a graph whose classes are disjoint cliques sees each node through its class mean (A X is constant within a
class), so its features need only be right on average; architectures that transform each node before propagating
(GCond's "SGC" and APPNP: an MLP, then A^k) or use no edges at all then train on features that are wrong one by one.
SGDD's label-smoothness term beta * tr(Y'^T L_sym Y') is zero exactly on such graphs, and its condensed Cora graphs
come out that way (BENCHMARKS.md, "SGDD's structure").
"""

from __future__ import annotations

import torch


def class_structure(adjacency: torch.Tensor, labels: torch.Tensor, threshold: float = 0.0) -> dict[str, float]:
    """Statistics of the edges above ``threshold`` (self-pairs excluded):

    * ``homophily``: the weighted edge homophily sum_{y_i = y_j} A_ij / sum_{i != j} A_ij (NaN without edges);
    * ``same_class_linked`` / ``cross_class_linked``: the fraction of same-class / cross-class node pairs with an edge;
    * ``mean_degree``: the mean weighted degree.

    Disjoint class cliques give 1, 1, 0; a graph with edges placed regardless of class gives homophily near
    sum_c p_c^2 and equal linked fractions.
    """
    n = int(labels.numel())
    if adjacency.shape != (n, n):
        raise ValueError(f"adjacency of shape {tuple(adjacency.shape)} does not match {n} labels")
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=adjacency.device)
    same = (labels[:, None] == labels[None, :]) & off_diagonal
    cross = labels[:, None] != labels[None, :]
    linked = (adjacency > threshold) & off_diagonal
    kept = torch.where(linked, adjacency, torch.zeros((), dtype=adjacency.dtype, device=adjacency.device))
    total = float(kept.sum())
    return {"homophily": float(kept[same].sum()) / total if total > 0 else float("nan"),
            "same_class_linked": float(linked[same].float().mean()) if bool(same.any()) else float("nan"),
            "cross_class_linked": float(linked[cross].float().mean()) if bool(cross.any()) else float("nan"),
            "mean_degree": float(kept.sum(1).mean())}
