"""The real graph as GCond's matching needs it: the outputs of a GNN at a few sampled training nodes.

Gradient matching only ever reads the real graph's outputs at the sampled nodes of one class, so a
full-graph forward per outer step (what the naive loop does) wastes almost all of its work, and its
backward streams the whole feature matrix once per class. Three ways to do less, in order of preference:

- SGC is linear: S^K X W^T + b = (S^K X) W^T + b. ``RealGraphView`` propagates the features once
  (``propagated_features``) and a forward at nodes ``idx`` is one small matrix product on their rows.
  Exact.
- Any other GNN with L propagation steps sees only the L-hop neighbourhood of ``idx``. ``computation_subgraph``
  collects it and copies the full graph's normalised operator entries onto it (degrees are NOT
  recomputed on the subgraph), so the outputs at ``idx`` equal the full-graph ones. Exact.
- On large graphs (Reddit, ogbn-arxiv) L-hop neighbourhoods cover most of the graph; ``fanout`` then
  samples at most that many neighbours per node and hop (GraphSAGE-style), written here with plain
  tensor operations (no compiled extension). A sampled neighbour's operator weight is scaled by
  (its row's neighbour count / sampled count) so every aggregation stays an unbiased estimate of the
  full one. Approximate, seeded by the caller's generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .models import GCN, SGC, Propagation


def propagated_features(features: torch.Tensor, graph: Propagation, hops: int) -> torch.Tensor:
    """S^hops X with S the GCN operator (SGC's fixed pre-processing)."""
    x = features
    for _ in range(hops):
        x = graph.gcn @ x
    return x


@dataclass
class CSR:
    """Row-compressed neighbour lists of the GCN operator (self loops included), for hop expansion."""

    indptr: torch.Tensor  # long [N + 1]
    columns: torch.Tensor  # long [nnz]
    values: torch.Tensor  # float [nnz], the full graph's normalised weights

    @classmethod
    def from_operator(cls, operator: torch.Tensor) -> "CSR":
        operator = operator.coalesce()
        rows, cols = operator.indices()
        counts = torch.bincount(rows, minlength=operator.shape[0])
        indptr = torch.zeros(operator.shape[0] + 1, dtype=torch.long, device=rows.device)
        indptr[1:] = counts.cumsum(0)
        return cls(indptr, cols, operator.values())

    def row_entries(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(position in ``nodes`` of each entry's row, entry index into columns/values) for every entry of those rows."""
        starts, ends = self.indptr[nodes], self.indptr[nodes + 1]
        lengths = ends - starts
        owner = torch.repeat_interleave(torch.arange(nodes.numel(), device=nodes.device), lengths)
        offsets = torch.arange(int(lengths.sum()), device=nodes.device) - torch.repeat_interleave(lengths.cumsum(0) - lengths, lengths)
        return owner, starts[owner] + offsets


def _sample_entries(owner: torch.Tensor, entries: torch.Tensor, columns: torch.Tensor, rows: torch.Tensor, fanout: int,
                    generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep each row's self loop and at most ``fanout`` of its other entries (uniform, seeded).

    Returns the kept entries (indices into ``entries``) and the factor that scales each kept weight:
    1 for the self loop, (neighbours / sampled) for a neighbour, so the row's aggregation is unbiased.
    """
    is_self = columns[entries] == rows[owner]
    keys = torch.rand(entries.numel(), generator=generator).to(entries.device)
    keys = torch.where(is_self, torch.full_like(keys, -1.0), keys)  # the self loop sorts first in its row
    order = torch.argsort(owner.double() * 4 + keys.double())  # grouped by row, random order inside a row
    owner_sorted = owner[order]
    rank = torch.arange(order.numel(), device=order.device) - torch.searchsorted(owner_sorted, owner_sorted)
    kept = order[rank <= fanout]
    neighbours = torch.bincount(owner[~is_self], minlength=rows.numel())
    sampled = neighbours.clamp(max=fanout).clamp_min(1)
    ratio = (neighbours / sampled).to(torch.float32)[owner[kept]]
    return kept, torch.where(is_self[kept], torch.ones_like(ratio), ratio)


def computation_subgraph(csr: CSR, seeds: torch.Tensor, hops: int, fanout: int | None = None,
                         generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The nodes a ``hops``-step GNN reads for ``seeds`` (distinct; listed first, in order) and the operator on them.

    Every node is expanded once, at the hop it is first reached, so each operator row is copied once.
    Without ``fanout`` the rows are the full graph's, and the outputs at the seeds are exact. With it,
    each expanded node keeps at most ``fanout`` sampled neighbours.
    """
    n = csr.indptr.numel() - 1
    position = torch.full((n,), -1, dtype=torch.long, device=seeds.device)
    position[seeds] = torch.arange(seeds.numel(), device=seeds.device)
    nodes, frontier = seeds, seeds
    rows, cols, vals = [], [], []
    for _ in range(hops):
        owner, entries = csr.row_entries(frontier)
        weights = csr.values[entries]
        if fanout is not None:
            kept, scale = _sample_entries(owner, entries, csr.columns, frontier, fanout, generator)
            owner, entries, weights = owner[kept], entries[kept], weights[kept] * scale
        neighbours = csr.columns[entries]
        new = neighbours[position[neighbours] < 0].unique()
        position[new] = torch.arange(nodes.numel(), nodes.numel() + new.numel(), device=seeds.device)
        nodes = torch.cat([nodes, new])
        rows.append(position[frontier[owner]])
        cols.append(position[neighbours])
        vals.append(weights)
        frontier = new
    size = nodes.numel()
    operator = torch.sparse_coo_tensor(torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(vals), (size, size),
                                       check_invariants=False)  # indices built in range above
    return nodes, operator.coalesce()


class RealGraphView:
    """Outputs of a matching GNN at chosen real nodes, computed from as little of the graph as is needed.

    SGC: from features propagated once (exact). GCN: on the computation subgraph of the nodes (exact,
    or sampled with ``fanout``). Any other GNN: a full-graph forward, read at the nodes.
    """

    def __init__(self, features: torch.Tensor, graph: Propagation, fanout: int | None = None) -> None:
        self.features, self.graph, self.fanout = features, graph, fanout
        self._sgc_features: dict[int, torch.Tensor] = {}
        self._csr: CSR | None = None

    def propagated(self, hops: int) -> torch.Tensor:
        """S^hops X of the whole graph (no gradient), computed once per hop count: SGC's input."""
        if hops not in self._sgc_features:
            with torch.no_grad():
                self._sgc_features[hops] = propagated_features(self.features, self.graph, hops)
        return self._sgc_features[hops]

    def outputs(self, model: nn.Module, nodes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``model``'s outputs at ``nodes`` (rows in the order given), differentiable in its parameters."""
        if isinstance(model, SGC):
            return model.lin(self.propagated(model.hops)[nodes])
        if not isinstance(model, GCN):
            return model(self.features, self.graph)[nodes]
        if self._csr is None:
            self._csr = CSR.from_operator(self.graph.gcn)
        seeds, inverse = torch.unique(nodes, return_inverse=True)
        sub_nodes, operator = computation_subgraph(self._csr, seeds, len(model.lins), self.fanout, generator)
        empty = torch.sparse_coo_tensor(torch.zeros(2, 0, dtype=torch.long, device=operator.device), operator.values()[:0],
                                        operator.shape, check_invariants=False)  # GCN reads only .gcn
        return model(self.features[sub_nodes], Propagation(operator, empty, empty))[inverse]
