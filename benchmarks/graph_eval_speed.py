"""GCond-protocol evaluation speed: sparse real features and project-first GNNs against the straightforward forms.

The protocol trains on the condensed graph and, after every epoch, runs the network on the whole
real graph to select the best epoch on the validation split; on Cora/CiteSeer that full-graph pass
is most of the cost. The reference runs it on the dense feature matrix with ChebNet and GraphSAGE
propagating the (1,433- or 3,703-wide) input before projecting it, as the earlier code did; the
default runs it on CSR features with every network projecting first. Both train the same networks
(same seeds) in the same process, alternately; the accuracies show they agree.

    python benchmarks/graph_eval_speed.py --data-root ../shared/data --datasets cora,citeseer --epochs 100
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import distillset.graph.evaluate as graph_evaluate
import distillset.graph.models as graph_models
import distillset as ds
from distillset.graph.data import load_graph
from distillset.graph.evaluate import evaluate_graph


class PropagateFirstChebNet(graph_models.ChebNet):
    """sum_k T_k(L~) x W_k with the recurrence run on x itself (the straightforward form)."""

    def forward(self, x, graph):
        for i, lins in enumerate(self.layers):
            t_prev, t = x, -(graph.sym @ x)
            out = lins[0](t_prev) + lins[1](t)
            for k in range(2, len(lins)):
                t_prev, t = t, -2 * (graph.sym @ t) - t_prev
                out = out + lins[k](t)
            x = out if i == len(self.layers) - 1 else F.dropout(F.relu(out), self.dropout, self.training)
        return x


class PropagateFirstSAGE(graph_models.GraphSAGE):
    def forward(self, x, graph):
        x = F.dropout(F.relu(self.self1(x) + self.neigh1(graph.mean @ x)), self.dropout, self.training)
        return self.self2(x) + self.neigh2(graph.mean @ x)


def run(mode: str, synset, data, model: str, epochs: int):
    fast = dict(graph_models.GNNS)
    reference = {**fast, "cheby": PropagateFirstChebNet, "sage": PropagateFirstSAGE}
    graph_models.GNNS.clear()
    graph_models.GNNS.update(fast if mode == "fast" else reference)
    original = graph_evaluate.inference_features
    if mode != "fast":
        graph_evaluate.inference_features = lambda features, max_density=0.1: features
    try:
        start = time.perf_counter()
        result = evaluate_graph(synset, data, [model], runs=1, epochs=epochs, seed=0)[model]
        return time.perf_counter() - start, result.accs[0]
    finally:
        graph_evaluate.inference_features = original
        graph_models.GNNS.clear()
        graph_models.GNNS.update(fast)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--datasets", default="cora,citeseer")
    parser.add_argument("--models", default="gcn,sgc,appnp,cheby,sage,mlp")
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; condensed graph: random nodes, r = 0.5")
    print("| dataset | GNN | reference (s) | default (s) | speed-up | test accuracy reference / default (%) |")
    print("|---|---|---|---|---|---|")
    for dataset in args.datasets.split(","):
        data = load_graph(dataset, args.data_root)
        synset = ds.condense_graph("random", data, 0.5, seed=0)
        for model in args.models.split(","):
            t_ref, acc_ref = run("reference", synset, data, model, args.epochs)
            t_fast, acc_fast = run("fast", synset, data, model, args.epochs)
            print(f"| {dataset} | {model} | {t_ref:.2f} | {t_fast:.2f} | {t_ref / t_fast:.2f}x | {100 * acc_ref:.1f} / {100 * acc_fast:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
