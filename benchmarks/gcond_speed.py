"""GCond epoch time: the real graph read through RealGraphView against a full-graph forward per outer step.

Both engines run the same epochs (same seed, same draws) in the same process, alternately, so the
ratio is not skewed by the machine's load drifting; the losses are printed to show they agree.

    python benchmarks/gcond_speed.py --data-root ../shared/data --datasets cora,citeseer --epochs 6
"""

from __future__ import annotations

import argparse
import time

import torch

from distillset.graph.data import load_graph
import distillset as ds


class FullGraphForward:
    """The straightforward reference: the matching network on the whole real graph, read at the nodes."""

    def __init__(self, view) -> None:
        self.features, self.graph = view.features, view.graph

    def outputs(self, model, nodes, generator=None):
        return model(self.features, self.graph)[nodes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--datasets", default="cora,citeseer")
    parser.add_argument("--methods", default="gcond,sgdd")
    parser.add_argument("--matching-models", default="sgc,gcn")
    parser.add_argument("--reduction", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=6, help="epochs timed per engine (a structure and a feature epoch each)")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| dataset | method | matching GNN | full graph (s/epoch) | view (s/epoch) | speed-up | max loss difference |")
    print("|---|---|---|---|---|---|---|")
    for dataset in args.datasets.split(","):
        data = load_graph(dataset, args.data_root)
        for method in args.methods.split(","):
            for matching in args.matching_models.split(","):
                spec = ds.get_method(method, "graph")
                config = spec.make_config({"reduction": args.reduction, "matching_model": matching, "structure_epochs": 1,
                                           "feature_epochs": 1})
                fast, reference = spec.build(data, config), spec.build(data, config)
                states = {"fast": fast.initial_state(), "reference": reference.initial_state()}
                reference.real_view = FullGraphForward(reference.real_view)
                times = {"fast": 0.0, "reference": 0.0}
                losses = {"fast": [], "reference": []}
                for _ in range(args.epochs):
                    for name, engine in (("reference", reference), ("fast", fast)):
                        start = time.perf_counter()
                        losses[name].append(engine.step(states[name]))
                        times[name] += time.perf_counter() - start
                difference = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(losses["fast"], losses["reference"]))
                print(f"| {dataset} | {method} | {matching} | {times['reference'] / args.epochs:.3f} | "
                      f"{times['fast'] / args.epochs:.3f} | {times['reference'] / times['fast']:.2f}x | {difference:.1e} (relative) |",
                      flush=True)


if __name__ == "__main__":
    main()
