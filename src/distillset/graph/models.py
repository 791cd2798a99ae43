"""The GNN zoo of graph condensation: GCN, SGC, APPNP, ChebNet, GraphSAGE and MLP as textbook layers, and the
variants GCond's cross-architecture table (its Table 3) actually trains, under names that say so (``gcond-*``).

Every model is ``model(x, graph)`` where ``graph`` is a :class:`Propagation`: the operators a model
needs, built once per graph either from a sparse real graph (torch sparse CSR, so a 2,708-node Cora
costs its 10,556 edges) or from a dense weighted synthetic adjacency (differentiable, so condensation
can learn the structure through it). One code path serves both; no compiled extension is needed.
The layers are written here rather than taken from PyTorch Geometric because they must accept a dense
adjacency with gradients flowing into it, which PyG's message passing over edge lists does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import unknown_name


@dataclass
class Propagation:
    """Normalised operators of one graph: gcn = D^-1/2 (A + I) D^-1/2, mean = D^-1 A, sym = D^-1/2 A D^-1/2."""

    gcn: torch.Tensor
    mean: torch.Tensor
    sym: torch.Tensor

    @classmethod
    def from_dense(cls, adjacency: torch.Tensor) -> "Propagation":
        n = adjacency.shape[0]
        eye = torch.eye(n, device=adjacency.device, dtype=adjacency.dtype)
        with_loops = adjacency + eye
        d = with_loops.sum(1).clamp_min(1e-12).rsqrt()
        deg = adjacency.sum(1)
        dm = torch.where(deg > 0, 1 / deg.clamp_min(1e-12), torch.zeros_like(deg))
        ds = torch.where(deg > 0, deg.clamp_min(1e-12).rsqrt(), torch.zeros_like(deg))
        return cls(d[:, None] * with_loops * d[None, :], dm[:, None] * adjacency, ds[:, None] * adjacency * ds[None, :])

    @classmethod
    def from_edges(cls, edge_index: torch.Tensor, num_nodes: int, weight: torch.Tensor | None = None) -> "Propagation":
        device = edge_index.device
        w = torch.ones(edge_index.shape[1], device=device) if weight is None else weight
        row, col = edge_index
        deg = torch.zeros(num_nodes, device=device).index_add_(0, row, w)
        loops = torch.arange(num_nodes, device=device)
        d_loop = (deg + 1).rsqrt()

        def sparse(r, c, v):
            return torch.sparse_coo_tensor(torch.stack([r, c]), v, (num_nodes, num_nodes), check_invariants=True).coalesce()

        gcn = sparse(torch.cat([row, loops]), torch.cat([col, loops]),
                     torch.cat([d_loop[row] * w * d_loop[col], d_loop * d_loop]))
        inv = torch.where(deg > 0, 1 / deg.clamp_min(1e-12), torch.zeros_like(deg))
        inv_sqrt = torch.where(deg > 0, deg.clamp_min(1e-12).rsqrt(), torch.zeros_like(deg))
        return cls(gcn, sparse(row, col, inv[row] * w), sparse(row, col, inv_sqrt[row] * w * inv_sqrt[col]))


def _mm(op: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return op @ h


class GCN(nn.Module):
    """Kipf & Welling: H' = A_hat (H W) + b, with A_hat = D^-1/2 (A + I) D^-1/2 (bias after propagation)."""

    def __init__(self, features: int, hidden: int, classes: int, layers: int = 2, dropout: float = 0.5) -> None:
        super().__init__()
        sizes = [features] + [hidden] * (layers - 1) + [classes]
        self.lins = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(b)) for b in sizes[1:])
        self.dropout = dropout

    def forward(self, x, graph: Propagation):
        for i, (lin, bias) in enumerate(zip(self.lins, self.biases)):
            x = _mm(graph.gcn, lin(x)) + bias
            if i < len(self.lins) - 1:
                x = F.dropout(F.relu(x), self.dropout, self.training)
        return x


class SGC(nn.Module):
    """Simplified graph convolution: K propagations, one linear layer (GCond's default matching network)."""

    def __init__(self, features: int, hidden: int, classes: int, hops: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.lin, self.hops = nn.Linear(features, classes), hops

    def forward(self, x, graph: Propagation):
        # S^K X W + b; propagating the narrower side first gives the same numbers
        if self.lin.in_features <= self.lin.out_features:
            for _ in range(self.hops):
                x = _mm(graph.gcn, x)
            return self.lin(x)
        x = x @ self.lin.weight.T
        for _ in range(self.hops):
            x = _mm(graph.gcn, x)
        return x + self.lin.bias


class APPNP(nn.Module):
    def __init__(self, features: int, hidden: int, classes: int, hops: int = 10, alpha: float = 0.1, dropout: float = 0.5) -> None:
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(features, hidden), nn.Linear(hidden, classes)
        self.hops, self.alpha, self.dropout = hops, alpha, dropout

    def forward(self, x, graph: Propagation):
        x = F.dropout(F.relu(self.lin1(x)), self.dropout, self.training)
        h0 = self.lin2(x)
        h = h0
        for _ in range(self.hops):
            h = (1 - self.alpha) * _mm(graph.gcn, h) + self.alpha * h0
        return h


class ChebNet(nn.Module):
    """Chebyshev filters of order K on the scaled Laplacian L~ = -D^-1/2 A D^-1/2 (lambda_max taken as 2).

    A layer is sum_k T_k(L~) x W_k. It projects first (y_k = x W_k, as wide as the output) and then
    sums the series by Clenshaw's recurrence, b_k = y_k + 2 L~ b_(k+1) - b_(k+2), out = y_0 + L~ b_1 - b_2:
    the same numbers as propagating x itself, but the propagations run on hidden/classes columns
    instead of the input's (1,433 on Cora), and x may be a sparse (CSR) feature matrix.
    """

    def __init__(self, features: int, hidden: int, classes: int, order: int = 2, dropout: float = 0.5) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.ModuleList(nn.Linear(features, hidden, bias=k == 0) for k in range(order + 1)),
                                     nn.ModuleList(nn.Linear(hidden, classes, bias=k == 0) for k in range(order + 1))])
        self.dropout = dropout

    def forward(self, x, graph: Propagation):
        for i, lins in enumerate(self.layers):
            projected = [lin(x) for lin in lins]
            b_next, b_next2 = torch.zeros_like(projected[0]), torch.zeros_like(projected[0])
            for y in reversed(projected[1:]):
                b_next, b_next2 = y - 2 * _mm(graph.sym, b_next) - b_next2, b_next
            out = projected[0] - _mm(graph.sym, b_next) - b_next2
            x = out if i == len(self.layers) - 1 else F.dropout(F.relu(out), self.dropout, self.training)
        return x


class GraphSAGE(nn.Module):
    """Mean aggregator: h' = W_self h + W_neigh mean_{neighbours} h, computed as mean_{neighbours}(W_neigh h)
    (equal by linearity; the mean then runs on the narrow side, and h may be a sparse CSR matrix)."""

    def __init__(self, features: int, hidden: int, classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.self1, self.neigh1 = nn.Linear(features, hidden), nn.Linear(features, hidden, bias=False)
        self.self2, self.neigh2 = nn.Linear(hidden, classes), nn.Linear(hidden, classes, bias=False)
        self.dropout = dropout

    def forward(self, x, graph: Propagation):
        x = F.dropout(F.relu(self.self1(x) + _mm(graph.mean, self.neigh1(x))), self.dropout, self.training)
        return self.self2(x) + _mm(graph.mean, self.neigh2(x))


class MLP(nn.Module):
    """No structure at all: the control for what the graph contributes."""

    def __init__(self, features: int, hidden: int, classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(features, hidden), nn.Linear(hidden, classes)
        self.dropout = dropout

    def forward(self, x, graph: Propagation | None = None):
        return self.lin2(F.dropout(F.relu(self.lin1(x)), self.dropout, self.training))


class GCondSGC(MLP):
    """GCond's cross-architecture "SGC" (``models/sgc_multi.py``, ntrans 2): a two-layer perceptron, then
    K = 2 propagations with A_hat = D^-1/2 (A + I) D^-1/2: out = A_hat^2 MLP(X)."""

    def __init__(self, features: int, hidden: int, classes: int, hops: int = 2, dropout: float = 0.0) -> None:
        super().__init__(features, hidden, classes, dropout)
        self.hops = hops

    def forward(self, x, graph: Propagation):
        x = super().forward(x)  # the two-layer perceptron, then the propagations
        for _ in range(self.hops):
            x = _mm(graph.gcn, x)
        return x


class GCondAPPNP(MLP):
    """GCond's cross-architecture APPNP (``models/myappnp1.py``): a two-layer perceptron H, then K = 2 steps of
    personalised propagation x <- (1 - alpha) A_hat x + alpha H, alpha = 0.1."""

    def __init__(self, features: int, hidden: int, classes: int, hops: int = 2, alpha: float = 0.1, dropout: float = 0.0) -> None:
        super().__init__(features, hidden, classes, dropout)
        self.hops, self.alpha = hops, alpha

    def forward(self, x, graph: Propagation):
        h = x = super().forward(x)
        for _ in range(self.hops):
            x = (1 - self.alpha) * _mm(graph.gcn, x) + self.alpha * h
        return x


class GCondCheby(nn.Module):
    """GCond's cross-architecture Cheby (``models/mycheby.py``: K = 2, ``single_param``): each layer applies ONE
    weight to the input and to its propagation on A_hat, out = X W + A_hat X W + b (computed as Y + A_hat Y + b
    with Y = X W, equal by linearity, so X may be a sparse CSR matrix)."""

    def __init__(self, features: int, hidden: int, classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.lins = nn.ModuleList([nn.Linear(features, hidden, bias=False), nn.Linear(hidden, classes, bias=False)])
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(hidden)), nn.Parameter(torch.zeros(classes))])
        self.dropout = dropout

    def forward(self, x, graph: Propagation):
        for i, (lin, bias) in enumerate(zip(self.lins, self.biases)):
            y = lin(x)
            x = y + _mm(graph.gcn, y) + bias
            if i == 0:
                x = F.dropout(F.relu(x), self.dropout, self.training)
        return x


class GCondSAGE(GCN):
    """GCond's cross-architecture GraphSAGE (``models/mygraphsage.py``): ``SageConvolution`` without its root
    weight, on A_hat, so each layer is A_hat (X W) + b, a GCN layer; what differs is training, which runs on
    neighbourhoods sampled from the condensed graph as its PyG ``NeighborSampler`` does: in every step each node
    keeps at most k of its non-zero A_hat entries (self loop included), drawn uniformly, with their A_hat values;
    k = 5 per layer, or 30 (output layer) and 20 (first layer) when more than half of A_hat is non-zero. Testing
    (on the real graph) uses every neighbour."""

    def __init__(self, features: int, hidden: int, classes: int, dropout: float = 0.0) -> None:
        super().__init__(features, hidden, classes, layers=2, dropout=dropout)

    def forward(self, x, graph: Propagation):
        op = graph.gcn
        sample = self.training and op.layout == torch.strided  # the condensed graph (dense); the real one is sparse
        if sample:
            sizes = (20, 30) if float((op != 0).float().mean()) > 0.5 else (5, 5)  # first layer, output layer
        for i, (lin, bias) in enumerate(zip(self.lins, self.biases)):
            layer_op = sampled_neighbours(op, sizes[i]) if sample else op
            x = _mm(layer_op, lin(x)) + bias
            if i < len(self.lins) - 1:
                x = F.dropout(F.relu(x), self.dropout, self.training)
        return x


def sampled_neighbours(op: torch.Tensor, k: int) -> torch.Tensor:
    """``op`` with each row cut to at most ``k`` of its non-zero entries, chosen uniformly (the global RNG, which
    the evaluator seeds per run), values unchanged."""
    scores = torch.rand(op.shape, device=op.device).masked_fill(op == 0, -1.0)
    keep = scores.topk(min(k, op.shape[1]), dim=1).indices
    mask = torch.zeros_like(op, dtype=torch.bool).scatter_(1, keep, True) & (op != 0)
    return op * mask


class GCondMLP(GCN):
    """GCond's cross-architecture "MLP" (``tester_other_arcs.py``): a GCN trained on the condensed nodes with
    every edge removed (A_hat = I, so training sees no structure) and tested as a GCN on the real graph."""

    trains_without_edges = True

    def __init__(self, features: int, hidden: int, classes: int, dropout: float = 0.0) -> None:
        super().__init__(features, hidden, classes, layers=2, dropout=dropout)


GNNS = {"gcn": GCN, "sgc": SGC, "appnp": APPNP, "cheby": ChebNet, "sage": GraphSAGE, "mlp": MLP,
        "gcond-sgc": GCondSGC, "gcond-appnp": GCondAPPNP, "gcond-cheby": GCondCheby, "gcond-sage": GCondSAGE,
        "gcond-mlp": GCondMLP}
# GCond's Table 3 cross-architecture protocol: these models, dropout 0 on Cora/CiteSeer, edges below 0.05 dropped
GCOND_CROSS_ARCHITECTURES = ("gcn", "gcond-sgc", "gcond-appnp", "gcond-cheby", "gcond-sage", "gcond-mlp")
GCOND_CROSS_EDGE_THRESHOLD = 0.05


def build_gnn(name: str, features: int, classes: int, hidden: int = 256, generator: torch.Generator | None = None,
              device="cpu", **options) -> nn.Module:
    """A GNN of the zoo with PyTorch's default initialisation, drawn from a seed taken from ``generator``
    (the global RNG is forked for the construction and restored, so no other stream moves)."""
    key = name.lower()
    if key not in GNNS:
        raise unknown_name("GNN", name, list(GNNS))
    if generator is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
            model = GNNS[key](features, hidden, classes, **options)
    else:
        model = GNNS[key](features, hidden, classes, **options)
    return model.to(device)
