"""Why some GCond-X graphs (the release's way) read 20 points lower: their features, measured.

On CiteSeer, GCond-X run as GCond's release runs it (features matched through an untrained PGE, saved without edges)
gives some graphs near GCond's accuracy and others 15-30 points lower, with their own GCNs agreeing. The low graphs'
rows sum to about 9-14 where the others' sum to 1.3-1.4 (real CiteSeer rows are L1-normalised to 1). One reading: the
drift is a component shared by all synthetic rows, which a dense PGE averages away in matching but a GCN on the
edgeless saved graph sees in full. This script tests it on saved graphs (``graph_table.py``'s --out folders):

* the features' shared component (the norm of the mean synthetic row) and the rest (mean norm of a row minus that
  mean), and the fraction of the features' variance that the class explains;
* a GCN (GCond's protocol, 3 networks) on the graph as saved, and on the graph with its shared component replaced by
  the real training rows' mean: if the reading holds, the low graphs recover and the others do not move.

    OMP_NUM_THREADS=1 python benchmarks/gcondx_drift.py --data-root ../shared/data runs/bench-graph-v2/citeseer-gcond-x-release-0.25-*
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from pathlib import Path

import torch

from distillset.graph.data import load_graph
from distillset.graph.evaluate import evaluate_graph
from distillset.graph.synset import GraphSynSet


def class_explained(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Between-class scatter over total scatter: the share of the features' variance the class explains."""
    centre = features.mean(0)
    total = ((features - centre) ** 2).sum()
    members = torch.nn.functional.one_hot(labels).to(features.dtype)  # [n, classes]; one matmul gives every class sum
    counts = members.sum(0)
    present = counts > 0
    means = (members.T @ features)[present] / counts[present, None]
    between = (counts[present] * ((means - centre) ** 2).sum(1)).sum()
    return float(between / total)


def gcn_accuracy(synset: GraphSynSet, data, seed: int) -> list[float]:
    return [100 * a for a in evaluate_graph(synset, data, ["gcn"], runs=3, epochs=600, seed=seed)["gcn"].accs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="condensed graph folders <dataset>-<method>-<r>-<seed> (synset.safetensors)")
    parser.add_argument("--data-root")
    args = parser.parse_args()
    data, real_mean = None, None
    print("| graph | row sum | shared norm | rest norm | class-explained variance | GCN as saved | GCN, shared -> real mean |")
    print("|---|---|---|---|---|---|---|")
    for folder in map(Path, args.folders):
        dataset, seed = folder.name.split("-")[0], int(folder.name.rsplit("-", 1)[1])
        if data is None or data.name != dataset:
            data = load_graph(dataset, args.data_root)
            real_mean = data.features[data.train].mean(0)
        synset = GraphSynSet.load(folder / "synset.safetensors")
        x = synset.features
        shared = x.mean(0)
        saved = gcn_accuracy(synset, data, seed)
        replaced = gcn_accuracy(dataclasses.replace(synset, features=x - shared + real_mean.to(x.dtype)), data, seed)
        print(f"| {folder.name} | {float(x.sum(1).mean()):.2f} | {float(shared.norm()):.2f} | "
              f"{float((x - shared).norm(dim=1).mean()):.2f} | {class_explained(x, synset.labels):.3f} | "
              f"{statistics.fmean(saved):.2f} | {statistics.fmean(replaced):.2f} |", flush=True)


if __name__ == "__main__":
    main()
