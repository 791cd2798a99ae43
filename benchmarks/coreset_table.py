"""The coreset baseline table: random / herding / k-center / forgetting x datasets x ipc, plus whole data.

Each cell selects a coreset (seed 0; the feature network is trained once per dataset and cached),
evaluates it with the paper protocol (--runs fresh ConvNets x --epochs, final-epoch accuracy) and is
stored in --results (JSON, written atomically after every run of every cell), so an interrupted or partial run
resumes at its next run and the table can be completed across sessions or machines. Prints the Markdown table of
every cell measured so far.

    python benchmarks/coreset_table.py --data-root ../shared/data --datasets mnist,fashion-mnist --ipc 1,10,50
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import distillset as ds
from distillset.fileio import atomic_write_json

from common import add_results_arguments, measure_runs, open_results, stored_runs  # noqa: E402

METHODS = ("random", "herding", "kcenter", "forgetting")


def table(results: dict, datasets: list[str], ipcs: list[int]) -> str:
    lines = ["| dataset | method | " + " | ".join(f"ipc {i}" for i in ipcs) + " |", "|---|---|" + "---|" * len(ipcs)]
    for dataset in datasets:
        for method in METHODS:
            cells = []
            for ipc in ipcs:
                cell = results.get(f"{dataset}/{method}/{ipc}")
                cells.append(f"{100 * cell['mean']:.2f} +- {100 * cell['std']:.2f} ({len(cell['accs'])})" if cell else "-")
            lines.append(f"| {dataset} | {method} | " + " | ".join(cells) + " |")
        whole = results.get(f"{dataset}/whole")
        if whole:
            lines.append(f"| {dataset} | whole data ({whole['epochs']} epochs) | {100 * whole['mean']:.2f} +- {100 * whole['std']:.2f} "
                         f"({len(whole['accs'])}) |" + " |" * (len(ipcs) - 1))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--datasets", default="mnist,fashion-mnist")
    parser.add_argument("--ipc", default="1,10,50")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--feature-epochs", type=int, default=3)
    parser.add_argument("--whole-epochs", type=int, default=0, help="also train on the whole training set for this many epochs")
    parser.add_argument("--whole-runs", type=int, default=1, help="fresh networks for the whole-data reference")
    parser.add_argument("--device", default="auto")
    add_results_arguments(parser, "benchmarks/results/coreset_table.json")
    args = parser.parse_args()

    device = ds.resolve_device(args.device)
    path, results = open_results(args)
    datasets, ipcs = args.datasets.split(","), [int(v) for v in args.ipc.split(",")]
    if args.table:
        print(table(results, datasets, ipcs))
        return
    for dataset in datasets:
        data = ds.load_dataset(dataset, data_root=args.data_root)
        real = ds.real_data(data, "train", device)
        for ipc in ipcs:
            for method in args.methods.split(","):
                key = f"{dataset}/{method}/{ipc}"
                if set(range(args.runs)) <= set(stored_runs(results, key, args.epochs)):
                    continue
                synset = ds.make_coreset(method, real, ipc, seed=0, feature_epochs=args.feature_epochs)
                cell = measure_runs(results, key, path, synset, data, args.runs, args.epochs, device,
                                    extra={"feature_epochs": args.feature_epochs})
                print(f"{key}: {100 * cell['mean']:.2f} +- {100 * cell['std']:.2f} ({cell['seconds']:.0f} s)", flush=True)
        if args.whole_epochs and f"{dataset}/whole" not in results:
            start = time.perf_counter()
            whole = ds.SynSet(real.images, real.labels, dataset, real.num_classes, real.mean, real.std, "whole", 0)
            evaluation = ds.evaluate_synset(whole, data.test_images, data.test_labels, runs=args.whole_runs, epochs=args.whole_epochs,
                                            seed=0, device=device).results["convnet"]
            results[f"{dataset}/whole"] = {"mean": evaluation.mean, "std": evaluation.std, "accs": evaluation.accs,
                                           "epochs": args.whole_epochs, "seconds": time.perf_counter() - start,
                                           "date": time.strftime("%Y-%m-%d"), "device": str(device)}
            atomic_write_json(path, results)
            print(f"{dataset}/whole: {100 * evaluation.mean:.2f} ({time.perf_counter() - start:.0f} s)", flush=True)
    print(table(results, datasets, ipcs))


if __name__ == "__main__":
    main()
