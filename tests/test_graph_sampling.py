"""The real-graph view of GCond's matching: precomputed SGC features and L-hop computation subgraphs
give the full-graph outputs at the sampled nodes exactly; fanout sampling is seeded and unbiased."""

from __future__ import annotations

import pytest
import torch

from distillset.graph.data import load_graph
from distillset.graph.gcond import GCond, GCondConfig
from distillset.graph.models import Propagation, build_gnn
from distillset.graph.sampling import CSR, RealGraphView, computation_subgraph


@pytest.fixture(scope="module")
def cora(data_root):
    return load_graph("cora", data_root)


@pytest.fixture(scope="module")
def cora_graph(cora):
    return Propagation.from_edges(cora.edge_index, cora.num_nodes)


def sampled_nodes(cora, count: int = 64) -> torch.Tensor:
    nodes = cora.train[torch.randperm(len(cora.train), generator=torch.Generator().manual_seed(0))[:count]]
    return torch.cat([nodes, nodes[:5]])  # repeats must come back as repeated rows


@pytest.mark.parametrize("name", ["sgc", "gcn"])
def test_the_view_equals_a_full_graph_forward_at_the_nodes(cora, cora_graph, name):
    model = build_gnn(name, cora.features.shape[1], cora.num_classes, 64, torch.Generator().manual_seed(1), dropout=0.0)
    nodes = sampled_nodes(cora)
    full = model(cora.features, cora_graph)[nodes]
    view = RealGraphView(cora.features, cora_graph).outputs(model, nodes)
    assert view.shape == full.shape
    torch.testing.assert_close(view, full, rtol=1e-4, atol=1e-5)
    # and the parameter gradients the matching uses agree too
    g_full = torch.autograd.grad(full.square().sum(), list(model.parameters()))
    g_view = torch.autograd.grad(view.square().sum(), list(model.parameters()))
    for a, b in zip(g_full, g_view):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_the_computation_subgraph_is_the_l_hop_neighbourhood(cora, cora_graph):
    csr = CSR.from_operator(cora_graph.gcn)
    seeds = cora.train[:10]
    nodes, operator = computation_subgraph(csr, seeds, hops=2)
    assert torch.equal(nodes[:10], seeds) and nodes.unique().numel() == nodes.numel()
    dense = torch.zeros(cora.num_nodes, cora.num_nodes)
    dense[cora.edge_index[0], cora.edge_index[1]] = 1
    dense += torch.eye(cora.num_nodes)
    reach = (dense[seeds] @ dense).clamp(max=1).sum(0) > 0  # within two hops, self included
    assert set(nodes.tolist()) == set(torch.nonzero(reach).flatten().tolist())
    assert operator.shape == (nodes.numel(), nodes.numel())


def test_fanout_sampling_is_seeded_exact_when_wide_and_unbiased_when_narrow(cora, cora_graph):
    csr = CSR.from_operator(cora_graph.gcn)
    seeds = cora.train[:20]
    x = torch.randn(cora.num_nodes, 3, generator=torch.Generator().manual_seed(2))
    full = (cora_graph.gcn @ x)[seeds]

    def one_hop(fanout, seed):
        nodes, operator = computation_subgraph(csr, seeds, 1, fanout, torch.Generator().manual_seed(seed))
        return (operator @ x[nodes])[:len(seeds)]

    max_degree = int(torch.bincount(cora.edge_index[0]).max())
    torch.testing.assert_close(one_hop(max_degree, 0), full, rtol=1e-5, atol=1e-6)
    assert torch.equal(one_hop(2, 5), one_hop(2, 5))
    assert not torch.equal(one_hop(2, 5), one_hop(2, 6))
    mean = torch.stack([one_hop(2, s) for s in range(600)]).mean(0)
    assert (mean - full).abs().max() < 0.05 * full.abs().max()
    nodes, operator = computation_subgraph(csr, seeds, 2, 2, torch.Generator().manual_seed(0))
    rows = operator.indices()[0]
    assert int(torch.bincount(rows).max()) <= 3  # self loop + at most 2 sampled neighbours per row


def test_gcond_matches_with_the_view_and_a_gcn_with_fanout(cora):
    for matching_model, fanout in (("sgc", 0), ("gcn", 0), ("gcn", 3)):
        engine = GCond(cora, GCondConfig(reduction=0.25, outer_loop=2, inner_loop=1, matching_model=matching_model,
                                         fanout=fanout, seed=0))
        engine.epoch = engine.config.structure_epochs  # a feature epoch
        before = engine.features.detach().clone()
        loss = engine.step(engine.initial_state())
        assert loss > 0 and torch.isfinite(torch.tensor(loss))
        assert not torch.equal(before, engine.features.detach())
