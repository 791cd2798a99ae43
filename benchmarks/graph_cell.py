"""One graph-condensation cell, for A/B checks of a single seed: condense, evaluate with 3 GCNs, and print the
LED shift, mean weighted degree and weighted homophily of the synthetic graph (density and class mixing are
what a broken structure generator changes first).

    OMP_NUM_THREADS=1 python benchmarks/graph_cell.py --data-root ../shared/data citeseer gcond 1 1
"""
from __future__ import annotations

import argparse
import time

import torch

from distillset.graph.data import load_graph
from distillset.graph.evaluate import evaluate_graph
import distillset as ds
from distillset.graph.led import energy_distribution, graph_led, led_shift


def weighted_homophily(adjacency: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of the edge weight that joins nodes of the same class."""
    same = (labels[:, None] == labels[None, :]).to(adjacency.dtype)
    return float((adjacency * same).sum() / adjacency.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("method")
    parser.add_argument("reduction", type=float)
    parser.add_argument("seed", type=int)
    parser.add_argument("--data-root")
    parser.add_argument("--out", default="runs/graph-cell")
    args = parser.parse_args()
    data = load_graph(args.dataset, args.data_root)
    start = time.perf_counter()
    synset = ds.run_method(args.method, args.dataset, f"{args.out}/{args.dataset}-{args.method}-{args.reduction:g}-{args.seed}",
                           {"reduction": args.reduction, "seed": args.seed}, data_root=args.data_root, progress=False,
                           log=lambda message: None).synset
    seconds = time.perf_counter() - start
    accs = evaluate_graph(synset, data, ["gcn"], runs=3, epochs=600, seed=args.seed)["gcn"].accs
    shift = led_shift(graph_led(data), energy_distribution(synset.features, synset.adjacency))
    print(f"{args.dataset} {args.method} r={args.reduction:g} seed {args.seed}: GCN {[round(100 * a, 1) for a in accs]}, "
          f"LED shift {shift:.4f}, weighted degree {synset.adjacency.sum(1).mean():.2f}, "
          f"homophily {weighted_homophily(synset.adjacency, synset.labels):.3f} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
