"""Node-selection baselines for graph condensation: random, herding and k-center.

Per class, as many labelled training nodes as GCond would synthesise (the training distribution times
the reduction) are selected; the condensed graph is the subgraph the real graph induces on them.
Herding and k-center work on SGC features (D^-1/2 (A+I) D^-1/2 applied twice to X): parameter-free,
so the baselines need no trained network, and they see the neighbourhood as a 2-layer GNN does.
"""

from __future__ import annotations

import torch

from ..errors import unknown_name
from ..methods.coresets import herding, k_center
from ..seeding import make_generator
from .data import GraphData
from .gcond import class_counts
from . import sampling
from .models import Propagation
from .synset import GraphSynSet

GRAPH_SELECTORS = ("random", "herding", "kcenter")


def propagated_features(data: GraphData, hops: int = 2) -> torch.Tensor:
    return sampling.propagated_features(data.features, Propagation.from_edges(data.edge_index, data.num_nodes), hops)


def select_nodes(method: str, data: GraphData, reduction: float, seed: int = 0) -> GraphSynSet:
    if method not in GRAPH_SELECTORS:
        raise unknown_name("graph coreset method", method, list(GRAPH_SELECTORS))
    counts = class_counts(data, reduction)
    features = propagated_features(data) if method != "random" else None
    generator = make_generator(seed, "graph-coreset", method)
    chosen = []
    for c, n in enumerate(counts):
        pool = data.train[data.labels[data.train] == c]
        n = min(n, pool.numel())
        if method == "random":
            pick = torch.randperm(pool.numel(), generator=generator)[:n]
        elif method == "herding":
            pick = herding(features[pool], n)
        else:
            pick = k_center(features[pool], n)
        chosen.append(pool[pick.to(pool.device)])
    nodes = torch.cat(chosen)
    position = torch.full((data.num_nodes,), -1, dtype=torch.long, device=nodes.device)
    position[nodes] = torch.arange(nodes.numel(), device=nodes.device)
    src, dst = data.edge_index
    inside = (position[src] >= 0) & (position[dst] >= 0)
    adjacency = torch.zeros(nodes.numel(), nodes.numel())
    adjacency[position[src[inside]].cpu(), position[dst[inside]].cpu()] = 1.0
    return GraphSynSet(data.features[nodes].float().cpu().clone(), adjacency, data.labels[nodes].cpu().clone(), data.name,
                       data.num_classes, f"coreset:{method}", reduction, {"method": method, "seed": seed, "nodes": nodes.tolist()})
