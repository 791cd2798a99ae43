"""The GCond evaluation protocol: train a GNN on the condensed graph, select on the REAL validation
split, report the REAL test split.

Each run: a fresh network (2-layer GCN, hidden 256, dropout 0.5 by default), Adam lr 0.01, weight
decay 5e-4, ``epochs`` full-batch steps on the synthetic graph; after every step the network is scored
on the real graph's validation nodes and the weights of the best validation epoch are kept (the
protocol's model selection, on validation data only); that network is tested once on the test nodes.
Dropout draws come from a generator seeded by (seed, model, run), so runs are reproducible.
"""

from __future__ import annotations

import warnings

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DistillsetError
from ..seeding import derive_seed, make_generator
from .data import GraphData
from .models import Propagation, build_gnn
from .synset import GraphSynSet


@dataclass
class GraphEvalResult:
    accs: list[float] = field(default_factory=list)
    val_accs: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.accs))

    @property
    def std(self) -> float:
        return float(np.std(self.accs))

    def as_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "accs": self.accs, "val_accs": self.val_accs}


def inference_features(features: torch.Tensor, max_density: float = 0.1) -> torch.Tensor:
    """The real features as a CSR matrix when they are mostly zeros (bag-of-words graphs: Cora 1.3% non-zero).

    Every GNN of the zoo projects its input before propagating it, so a sparse input makes the
    validation and test passes (one full-graph forward per training epoch) much faster with the same
    outputs (the whole protocol 2.6-9.3x, BENCHMARKS.md). Only used without gradients: training keeps
    dense inputs.
    """
    if features.layout != torch.strided or features.dim() != 2 or float((features != 0).float().mean()) > max_density:
        return features
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta": the ops used here are tested
        return features.to_sparse_csr()


@torch.no_grad()
def accuracy(model, features, graph, nodes, labels) -> float:
    model.eval()
    out = model(features, graph)
    return float((out[nodes].argmax(1) == labels[nodes]).float().mean())


def train_gnn(model_name: str, features: torch.Tensor, graph: Propagation, labels: torch.Tensor, train_nodes: torch.Tensor,
              data: GraphData, real_graph: Propagation, epochs: int = 600, lr: float = 0.01, weight_decay: float = 5e-4,
              hidden: int = 256, seed: int = 0, run: int = 0, real_features: torch.Tensor | None = None,
              dropout: float | None = None) -> tuple[torch.nn.Module, float]:
    """(the network of the best real-validation epoch, its validation accuracy) of one fresh network: Adam at
    ``lr``, and at epoch ``epochs // 2`` a new Adam at ``lr`` x 0.1 (GCond's ``_train_with_val``: the optimiser is
    rebuilt, so its moment estimates restart). ``dropout``: None keeps each model's own. A model that
    ``trains_without_edges`` (GCond's "MLP") trains on the nodes with every edge removed."""
    options = {} if dropout is None else {"dropout": dropout}
    model = build_gnn(model_name, features.shape[1], data.num_classes, hidden, make_generator(seed, "graph-eval", model_name, run, "init"),
                      features.device, **options)
    if getattr(model, "trains_without_edges", False):
        graph = Propagation.from_edges(torch.empty(2, 0, dtype=torch.long, device=features.device), features.shape[0])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    best_val, best_state = -1.0, None
    if real_features is None:  # evaluate_graph passes them in, converted once for all its networks
        real_features = inference_features(data.features)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "graph-eval", model_name, run, "dropout"))
        for epoch in range(epochs):
            if epoch == epochs // 2 and epoch > 0:  # GCond's schedule: lr x0.1 at half, with a fresh Adam (state reset)
                optimizer = torch.optim.Adam(model.parameters(), lr=lr * 0.1, weight_decay=weight_decay)
            model.train()
            out = model(features, graph)
            loss = F.cross_entropy(out[train_nodes], labels[train_nodes])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            val = accuracy(model, real_features, real_graph, data.val, data.labels)
            if val > best_val:
                best_val, best_state = val, {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model.eval(), best_val


def train_and_test(model_name: str, features: torch.Tensor, graph: Propagation, labels: torch.Tensor, train_nodes: torch.Tensor,
                   data: GraphData, real_graph: Propagation, epochs: int = 600, real_features: torch.Tensor | None = None,
                   **options) -> tuple[float, float]:
    """(best validation accuracy, test accuracy of that epoch's network) of one fresh network (:func:`train_gnn`)."""
    if real_features is None:
        real_features = inference_features(data.features)
    model, best_val = train_gnn(model_name, features, graph, labels, train_nodes, data, real_graph, epochs,
                                real_features=real_features, **options)
    return best_val, accuracy(model, real_features, real_graph, data.test, data.labels)


def check_synset_fits(synset: GraphSynSet, data: GraphData) -> None:
    """Refuse a condensed graph that cannot be trained and tested against ``data``: other feature width, more
    classes than the real graph has."""
    width, real_width = synset.features.shape[1], data.features.shape[1]
    if width != real_width:
        raise DistillsetError(f"graph SynSet has {width} features per node but {synset.dataset} has {real_width}; "
                              "it was made from other data or is damaged: condense it again")
    if synset.num_classes != data.num_classes:
        raise DistillsetError(f"graph SynSet declares {synset.num_classes} classes but {synset.dataset} has "
                              f"{data.num_classes}; it was made from other data or is damaged: condense it again")


def evaluate_graph(synset: GraphSynSet | None, data: GraphData, models: list[str] = ("gcn",), runs: int = 5, epochs: int = 600,
                   seed: int = 0, device="cpu", edge_threshold: float = 0.0, dropout: float | None = None
                   ) -> dict[str, GraphEvalResult]:
    """Evaluate a condensed graph (or, with ``synset=None``, the whole real graph's training nodes).

    ``edge_threshold`` drops the condensed graph's edges lighter than it (GCond's cross-architecture test: 0.05 on
    Cora/CiteSeer); ``dropout`` overrides every model's (that test: 0 on Cora/CiteSeer). GCond's node-classification
    numbers (its Table 2) use neither: a GCN at dropout 0.5 on the weighted graph, as this function's defaults."""
    if synset is not None:
        check_synset_fits(synset, data)
    data = data.to(device)
    real_graph = Propagation.from_edges(data.edge_index, data.num_nodes)
    real_features = inference_features(data.features)
    if synset is None:
        features, graph, labels, train = data.features, real_graph, data.labels, data.train
    else:
        features, labels = synset.features.to(device), synset.labels.to(device)
        adjacency = synset.adjacency.to(device)
        graph = Propagation.from_dense(adjacency * (adjacency >= edge_threshold) if edge_threshold > 0 else adjacency)
        train = torch.arange(len(labels), device=device)
    results = {}
    for name in models:
        result = GraphEvalResult()
        for run in range(runs):
            val, test = train_and_test(name, features, graph, labels, train, data, real_graph, epochs, seed=seed, run=run,
                                       real_features=real_features, dropout=dropout)
            result.accs.append(test)
            result.val_accs.append(val)
        results[name] = result
    return results
