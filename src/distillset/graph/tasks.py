"""Beyond node classification: link prediction and node anomaly detection with condensed graphs.

Link prediction (Cora): 10% of the real graph's edges (and as many non-edges) are held out and
removed from the graph that messages pass over, and from the graph the set is condensed from
(:func:`link_training_graph`). A GCN is trained on the condensed graph (or, as the
reference, on the real graph's training nodes), its hidden layer embeds the real nodes, and a pair is
scored by the cosine of its two embeddings; the score is the ROC-AUC of held-out edges against
non-edges. It measures whether what a network learns from the condensed graph transfers to a task it
was not condensed for.

Anomaly detection: anomalies are injected the standard way (Ding et al., 2019): ``cliques`` groups of
``clique_size`` random nodes are fully connected (structural anomalies), and as many other nodes
take the features of the farthest of ``candidates`` random nodes (contextual anomalies). The graph
is relabelled normal/anomalous with a seeded stratified 40/20/40 split; a GCN detector is trained on
the condensed version of that graph (any graph condensation method) or on the whole graph, and scored
by the ROC-AUC of its anomaly probability on the test nodes; condensation sees the training nodes' labels only.
Both protocols are this library's: the SGDD paper reports these tasks but its release has no code for them. YelpChi/Amazon fraud graphs in the .mat
layout of the SGDD paper (``features``, ``label``, and a relation such as ``homo``) are read too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DistillsetError
from ..seeding import make_generator
from .data import GraphData, undirected_edges
from .models import Propagation, build_gnn
from .synset import GraphSynSet


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counted half)."""
    scores, labels = scores.detach().double().cpu(), labels.cpu().bool()
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        raise DistillsetError("ROC-AUC needs both positive and negative examples")
    order = torch.argsort(scores)
    ranks = torch.empty_like(scores)
    sorted_scores = scores[order]
    # average ranks over ties
    unique, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    average = ends - (counts.double() - 1) / 2
    ranks[order] = average[inverse]
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


# ---------------------------------------------------------------------------------------------- link prediction
def split_edges(data: GraphData, test_fraction: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(edges kept for message passing [2, E'], held-out edges [2, T], non-edges [2, T]); undirected pairs."""
    src, dst = data.edge_index
    upper = src < dst
    pairs = torch.stack([src[upper], dst[upper]])
    generator = make_generator(seed, "link-prediction", "split")
    perm = torch.randperm(pairs.shape[1], generator=generator)
    held = int(test_fraction * pairs.shape[1])
    test, keep = pairs[:, perm[:held]], pairs[:, perm[held:]]
    existing = set((data.edge_index[0] * data.num_nodes + data.edge_index[1]).tolist())
    negatives = []
    while len(negatives) < held:
        a, b = torch.randint(data.num_nodes, (2, held), generator=generator)
        for u, v in zip(a.tolist(), b.tolist()):
            if u != v and u * data.num_nodes + v not in existing and len(negatives) < held:
                negatives.append((min(u, v), max(u, v)))
    kept = undirected_edges(keep[0].numpy(), keep[1].numpy(), data.num_nodes)
    return kept, test, torch.tensor(negatives, dtype=torch.long).T


def link_training_graph(data: GraphData, seed: int = 0, test_fraction: float = 0.1) -> GraphData:
    """``data`` without the edges :func:`link_prediction_auc` holds out at ``seed``: the graph a set meant for the
    link-prediction test must be condensed (or selected) from, so that no held-out edge reaches it."""
    kept, _, _ = split_edges(data, test_fraction, seed)
    return dataclasses.replace(data, edge_index=kept)


def link_prediction_auc(synset: GraphSynSet | None, data: GraphData, epochs: int = 200, seed: int = 0) -> float:
    """ROC-AUC of held-out Cora edges scored by a GCN trained on ``synset`` (None: on the real graph). ``synset``
    must come from :func:`link_training_graph` at the same seed; a set condensed from the whole graph has seen the
    held-out edges. This protocol is ours: the SGDD paper reports link prediction, its release has no code for it."""
    kept, positives, negatives = split_edges(data, seed=seed)
    real_graph = Propagation.from_edges(kept, data.num_nodes)
    if synset is None:
        features, graph, labels, train = data.features, real_graph, data.labels, data.train
    else:
        features, labels = synset.features, synset.labels
        graph, train = Propagation.from_dense(synset.adjacency), torch.arange(len(labels))
    model = build_gnn("gcn", data.features.shape[1], data.num_classes, 256, make_generator(seed, "link-prediction", "init"))
    _train_classifier(model, features, graph, labels, train, epochs, seed)
    model.eval()
    with torch.no_grad():
        hidden = F.relu(real_graph.gcn @ model.lins[0](data.features) + model.biases[0])  # first layer on the real graph
        embedding = F.normalize(hidden, dim=1)
    pairs = torch.cat([positives, negatives], 1)
    scores = (embedding[pairs[0]] * embedding[pairs[1]]).sum(1)
    truth = torch.cat([torch.ones(positives.shape[1]), torch.zeros(negatives.shape[1])])
    return roc_auc(scores, truth)


def _train_classifier(model, features, graph, labels, train, epochs: int, seed: int) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(epochs):
            model.train()
            loss = F.cross_entropy(model(features, graph)[train], labels[train])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


# ---------------------------------------------------------------------------------------------- anomalies
def inject_anomalies(data: GraphData, cliques: int = 10, clique_size: int = 15, candidates: int = 50, seed: int = 0) -> GraphData:
    """A copy of ``data`` with structural and contextual anomalies, labelled 1 (anomalous) / 0, split 40/20/40."""
    n = data.num_nodes
    generator = make_generator(seed, "anomaly", "inject")
    perm = torch.randperm(n, generator=generator)
    structural = perm[:cliques * clique_size].reshape(cliques, clique_size)
    contextual = perm[cliques * clique_size:2 * cliques * clique_size]
    if contextual.numel() < cliques * clique_size:
        raise DistillsetError(f"a graph of {n} nodes is too small for {2 * cliques * clique_size} anomalies")
    rows, cols = [data.edge_index[0]], [data.edge_index[1]]
    for group in structural:
        a, b = torch.meshgrid(group, group, indexing="ij")
        rows.append(a.flatten())
        cols.append(b.flatten())
    edges = undirected_edges(torch.cat(rows).numpy(), torch.cat(cols).numpy(), n)
    features = data.features.clone()
    for node in contextual.tolist():
        pool = torch.randint(n, (candidates,), generator=generator)
        far = pool[torch.argmax(((data.features[pool] - data.features[node]) ** 2).sum(1))]
        features[node] = data.features[far]
    labels = torch.zeros(n, dtype=torch.long)
    labels[structural.flatten()] = 1
    labels[contextual] = 1
    train, val, test = stratified_split(labels, seed)
    return GraphData(f"{data.name}-anomaly", features, edges, labels, train, val, test, 2)


def stratified_split(labels: torch.Tensor, seed: int, fractions=(0.4, 0.2)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = make_generator(seed, "anomaly", "split")
    parts = ([], [], [])
    for c in labels.unique().tolist():
        nodes = torch.nonzero(labels == c).flatten()
        nodes = nodes[torch.randperm(nodes.numel(), generator=generator)]
        a, b = int(fractions[0] * nodes.numel()), int((fractions[0] + fractions[1]) * nodes.numel())
        for part, chunk in zip(parts, (nodes[:a], nodes[a:b], nodes[b:])):
            part.append(chunk)
    return tuple(torch.sort(torch.cat(p)).values for p in parts)


def anomaly_auc(synset: GraphSynSet | None, data: GraphData, epochs: int = 200, seed: int = 0) -> float:
    """ROC-AUC on the test nodes of a GCN detector trained on ``synset`` (None: on the whole anomaly graph)."""
    real_graph = Propagation.from_edges(data.edge_index, data.num_nodes)
    if synset is None:
        features, graph, labels, train = data.features, real_graph, data.labels, data.train
    else:
        features, labels = synset.features, synset.labels
        graph, train = Propagation.from_dense(synset.adjacency), torch.arange(len(labels))
    model = build_gnn("gcn", data.features.shape[1], 2, 256, make_generator(seed, "anomaly", "detector"))
    _train_classifier(model, features, graph, labels, train, epochs, seed)
    model.eval()
    with torch.no_grad():
        probability = F.softmax(model(data.features, real_graph), 1)[:, 1]
    return roc_auc(probability[data.test], data.labels[data.test])


def read_fraud_mat(path: str | Path, relation: str = "homo", seed: int = 0) -> GraphData:
    """YelpChi / Amazon fraud graphs (.mat: ``features``, ``label``, relation matrices such as ``homo``)."""
    from scipy.io import loadmat
    from scipy.sparse import coo_matrix, issparse

    path = Path(path)
    if not path.is_file():
        raise DistillsetError(f"{path}: no such file")
    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError/MatReadError/TypeError for damaged files
        raise DistillsetError(f"{path} is not a readable .mat file ({exc})") from None
    missing = [k for k in ("features", "label", relation) if k not in mat]
    if missing:
        raise DistillsetError(f"{path} lacks {', '.join(missing)} (has {', '.join(k for k in mat if not k.startswith('__'))})")
    features = mat["features"].toarray() if issparse(mat["features"]) else np.asarray(mat["features"])
    labels = np.asarray(mat["label"]).reshape(-1).astype(np.int64)
    adjacency = coo_matrix(mat[relation])
    n = features.shape[0]
    if labels.shape[0] != n or adjacency.shape != (n, n):
        raise DistillsetError(f"{path}: {n} feature rows, {labels.shape[0]} labels and a {adjacency.shape} '{relation}' disagree")
    labels_t = torch.from_numpy(labels)
    train, val, test = stratified_split(labels_t, seed)
    return GraphData(path.stem, torch.from_numpy(features.astype(np.float32)), undirected_edges(adjacency.row, adjacency.col, n),
                     labels_t, train, val, test, int(labels.max()) + 1)
