"""What SGDD's transport term does to the structure in its first structure epochs, for candidate formulations.

A probe, not a method: it runs SGDD on Cora with every epoch a structure epoch (so the term acts from the start)
and reports, every 10 epochs, the generated graph's mean degree and homophily (the share of its edge weight, after
GCond's 0.01 threshold, between nodes of one class) and the term's value. The formulations:

* ``ridge``: the library's term, Sigma = (L + gamma I)^-1 for both graphs. Its null space (one direction per
  connected component, D^1/2 1 on the component) gets 1/gamma = 100, which dominates both sides.
* ``null``: the same with each graph's null space projected out, Sigma = (L + gamma I)^-1 - (1/gamma) U U^T: GOT's
  L^+ regularised on the rest of the spectrum (the release's inverse drops the smallest singular value likewise).

``--plan-mass`` scales the plan after Sinkhorn: 1 (each synthetic node receives one unit of original mass, the
library's) or e.g. m/n (the original nodes' mass spread evenly over the synthetic ones).

    OMP_NUM_THREADS=1 python benchmarks/sgdd_ot_probe.py --data-root ../shared/data --formulation null --plan-mass 77.37
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sparse
import torch
from scipy.sparse.csgraph import connected_components

import distillset as ds
from distillset.graph import sgdd
from distillset.graph.data import GraphData, load_graph


def null_space(data: GraphData) -> torch.Tensor:
    """[n, components]: the unit null vectors of the normalised Laplacian, D^1/2 1 on each connected component."""
    rows, cols = sgdd.induced_edges(data, torch.arange(data.num_nodes))
    adjacency = sparse.coo_matrix((np.ones(rows.numel()), (rows.numpy(), cols.numpy())), shape=(data.num_nodes,) * 2).tocsr()
    count, labels = connected_components(adjacency, directed=False)
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    vectors = np.zeros((data.num_nodes, count))
    for c in range(count):
        v = np.sqrt(degree * (labels == c))
        if v.any():
            vectors[:, c] = v / np.linalg.norm(v)
    return torch.from_numpy(vectors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--formulation", choices=("ridge", "null"), default="ridge")
    parser.add_argument("--plan-mass", type=float, default=1.0)
    parser.add_argument("--weight", type=float, default=1.0, help="OT weight (0: the term off, the baseline)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--every", type=int, default=10, help="report every this many epochs")
    parser.add_argument("--reduction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = load_graph("cora", args.data_root)
    spec = ds.get_method("sgdd", "graph")
    engine = spec.build(data, spec.make_config({"reduction": args.reduction, "seed": args.seed, "ot_weight": args.weight,
                                                "structure_epochs": args.epochs + 1, "feature_epochs": 1}))
    ridge = engine.config.ot_ridge
    original_null = null_space(data)

    def distance(adjacency: torch.Tensor) -> torch.Tensor:
        plan = sgdd.sinkhorn(engine.pge.plan.to(torch.float64), engine.config.sinkhorn_sweeps) * args.plan_mass
        projected = sgdd.symmetric_congruence(plan, engine.sigma_orig)
        sigma = sgdd.signal_covariance(adjacency, ridge)
        if args.formulation == "null":
            carried = original_null.T @ plan
            projected = projected - carried.T @ carried / ridge
            u = adjacency.to(torch.float64).sum(1).sqrt()
            u = u / u.norm()
            sigma = sigma - torch.outer(u, u) / ridge
        return sgdd.gaussian_w2(sigma, projected)

    if args.weight > 0:
        engine.structure_loss = lambda adjacency: (args.weight * distance(adjacency)).to(adjacency.dtype)

    def report(epoch: int) -> None:
        with torch.no_grad():
            a = engine.adjacency().double()
            a = torch.where(a < engine.config.threshold, torch.zeros_like(a), a)
            same = (engine.labels[:, None] == engine.labels[None, :]).double()
            value = f"{float(distance(engine.adjacency())):.4f}" if args.weight > 0 else "-"
            print(f"| {args.formulation} | {args.plan_mass:g} | {args.weight:g} | {epoch} | {float(a.sum(1).mean()):.2f} | "
                  f"{float((a * same).sum() / a.sum()):.3f} | {value} |", flush=True)

    print("| formulation | plan mass | weight | structure epochs | mean degree | homophily | W2 |\n|---|---|---|---|---|---|---|")
    state = engine.initial_state()
    report(0)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        engine.step(state)
        if epoch % args.every == 0:
            report(epoch)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
