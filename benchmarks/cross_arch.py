"""The DC paper's cross-architecture table: sets learned with ConvNet, evaluated on six networks.

Builds (or resumes) an experiment over --methods x --datasets at --ipc with the six evaluation models,
then prints one table per dataset: rows are methods, columns are models, cells mean +- std (%).
Every finished cell is kept in OUT/cells.json and every evaluation run of an unfinished one in OUT/runs.json,
so the table can be completed across sessions.

    python benchmarks/cross_arch.py --data-root ../shared/data --ipc 1 --runs 5 --out runs/cross-arch
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from distillset.experiment import ExperimentConfig, run_experiment

MODELS = ["convnet", "mlp", "lenet", "alexnet", "vgg11", "resnet18"]


def pivot(cells: dict, dataset: str, methods: list[str], ipc: int, models: list[str]) -> str:
    lines = [f"{dataset}, {ipc} image(s) per class, trained on ConvNet-made sets", "",
             "| method | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for method in methods:
        accs = {m: [a for k, c in cells.items() if k.startswith(f"{dataset}/{method}/{ipc}/") for a in c["accs"].get(m, [])]
                for m in models}
        row = [f"{100 * np.mean(a):.1f} +- {100 * np.std(a):.1f}" if a else "-" for a in accs.values()]
        lines.append(f"| {method} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--datasets", default="mnist,fashion-mnist")
    parser.add_argument("--methods", default="random,herding,dc,dsa,dm")
    parser.add_argument("--ipc", type=int, default=1)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--dc-iterations", type=int, default=1000)
    parser.add_argument("--dm-iterations", type=int, default=20000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="runs/cross-arch")
    args = parser.parse_args()
    methods, datasets, models = args.methods.split(","), args.datasets.split(","), args.models.split(",")
    config = ExperimentConfig(name="cross-arch", datasets=datasets, methods=methods, ipc=[args.ipc], models=models,
                              runs=args.runs, epochs=args.epochs, dsa="never",
                              method_options={"dc": {"iterations": args.dc_iterations}, "dsa": {"iterations": args.dc_iterations},
                                              "dm": {"iterations": args.dm_iterations}})
    run_experiment(config, out=args.out, device=args.device, data_root=args.data_root)
    cells = json.loads((Path(args.out) / "cells.json").read_text())
    for dataset in datasets:
        print(pivot(cells, dataset, methods, args.ipc, models))
        print()


if __name__ == "__main__":
    main()
