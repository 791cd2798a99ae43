"""A held-out check of our graph evaluator: GCond's own condensed graphs, evaluated with our protocol.

GCond's repository ships the graphs its paper reports (``saved_ours/feat_<data>_<r>_<seed>.pt`` and
``adj_*.pt``, seeds 0-4, r = 0.25 / 0.5 / 1 of the labelled nodes, Cora and CiteSeer). Importing them
(`distillset import --from gcond`) and training GCNs on them with our evaluator separates evaluator effects
from condensation effects: if these land inside the paper's std, a gap of our own GCond graphs is ours.

    git clone https://github.com/ChandlerBang/GCond /tmp/GCond
    python benchmarks/gcond_saved.py --saved /tmp/GCond/saved_ours --data-root ../shared/data

Per graph, --runs GCNs (GCond's ``test_with_val``: 3 per graph, 600 iterations, the model of the best
validation accuracy, the real test split). Reported: the mean and std over all graphs x runs (ours), the
mean of the per-graph stds over its runs (what GCond's log prints), and the std of the per-graph means.
Each graph is stored in --results once measured, so the script resumes.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from common import add_results_arguments, open_results

from distillset.graph.data import load_graph
from distillset.graph.evaluate import evaluate_graph
from distillset.importers import import_set
from distillset.published import PUBLISHED, PUBLISHED_STD
from distillset.results import ResultsStore


def table(results: dict) -> str:
    rows = ["| dataset | r | GCond published | ours on GCond's graphs (graphs x GCNs) | mean per-graph std | std of graph means |",
            "|---|---|---|---|---|---|"]
    groups: dict[tuple[str, float], list[dict]] = {}
    for cell in results.values():
        groups.setdefault((cell["dataset"], cell["reduction"]), []).append(cell)
    for (dataset, r), cells in sorted(groups.items()):
        accs = [a for c in cells for a in c["accs"]]
        means = [statistics.fmean(c["accs"]) for c in cells]
        inner = [statistics.pstdev(c["accs"]) for c in cells]
        key = ("gcond", dataset, r)
        published = f"{PUBLISHED[key]:.1f}" + (f" +- {PUBLISHED_STD[key]:.1f}" if key in PUBLISHED_STD else "") \
            if key in PUBLISHED else "-"
        rows.append(f"| {dataset} | {r:g} | {published} | {statistics.fmean(accs):.2f} +- {statistics.pstdev(accs):.2f} "
                    f"({len(cells)} x {len(cells[0]['accs'])}) | {statistics.fmean(inner):.2f} | "
                    f"{statistics.pstdev(means) if len(means) > 1 else 0:.2f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--saved", help="GCond's saved_ours folder")
    parser.add_argument("--datasets", default="cora,citeseer")
    parser.add_argument("--reductions", default="0.25,0.5,1.0")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--runs", type=int, default=3, help="GCNs per graph (GCond: 3)")
    parser.add_argument("--data-root")
    parser.add_argument("--device", default="cpu")
    add_results_arguments(parser, "benchmarks/results/gcond_saved.json")
    args = parser.parse_args()
    path, results = open_results(args)
    if not args.table:
        for dataset in args.datasets.split(","):
            data = load_graph(dataset, args.data_root)
            for r in args.reductions.split(","):
                for seed in args.seeds.split(","):
                    name = f"{dataset}_{r}_{seed}"
                    if name in results and len(results[name]["accs"]) == args.runs:
                        continue
                    synset = import_set(Path(args.saved) / f"feat_{name}.pt", "gcond", dataset, data_root=args.data_root)
                    result = evaluate_graph(synset, data, ["gcn"], runs=args.runs, device=args.device)["gcn"]
                    results[name] = {"dataset": dataset, "reduction": float(r), "seed": int(seed), "nodes": len(synset),
                                     "accs": [100 * a for a in result.accs], "val_accs": [100 * a for a in result.val_accs],
                                     "sha256": synset.config["sha256"]}
                    ResultsStore(path, results).save()
                    print(f"{name}: {statistics.fmean(results[name]['accs']):.2f}", flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
