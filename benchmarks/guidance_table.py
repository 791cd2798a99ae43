"""Pre-trained-model guidance: cross-architecture accuracy of DC/DM sets with pools of different diversity.

Lu et al. ("Can pre-trained models assist in dataset distillation?") report that a pool of diverse
networks (initialisations, architectures) and sub-optimal (early) checkpoints help DC/DSA/DM more than
one fully trained model. This script trains one pool (--pool-models x --pool-seeds, checkpoints at
--pool-epochs), then condenses the same set with each guide setting below and evaluates it on
--models (first = the training architecture; the rest measure cross-architecture generalisation):

    none            no guidance (the baseline)
    one-final       the first pool model (ConvNet), seed 0, last checkpoint
    one-early       the same, first checkpoint (sub-optimal)
    seeds-final     the first pool model, every seed, last checkpoint (diverse initialisations)
    archs-final     every architecture, seed 0, last checkpoint (diverse architectures)
    archs-early     every architecture, seed 0, first checkpoint
    all             every member (architectures x seeds x checkpoints)

Condensed sets live in OUT/METHOD-SETTING (resumable runs); every evaluation run is stored in
--results as soon as it ends, so the table can be completed across sessions.

    python benchmarks/guidance_table.py --data-root ../shared/data --dataset fashion-mnist --out runs/guidance
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import distillset as ds
from distillset.fileio import atomic_write_json
from distillset.methods.guidance import PoolConfig, train_pool

from common import add_results_arguments, measure_runs, model_columns, model_header, open_results  # noqa: E402

SETTINGS = ("none", "one-final", "one-early", "seeds-final", "archs-final", "archs-early", "all")


def guide_spec(setting: str, pool: Path, main_model: str, first: int, last: int) -> str:
    """The --guide-models specification of a setting (pool filters: ';' between keys, '|' between values)."""
    filters = {"none": None, "one-final": f"model={main_model};seed=0;epoch={last}",
               "one-early": f"model={main_model};seed=0;epoch={first}", "seeds-final": f"model={main_model};epoch={last}",
               "archs-final": f"seed=0;epoch={last}",
               "archs-early": f"seed=0;epoch={first}", "all": ""}
    value = filters[setting]
    return "" if value is None else f"{pool}:{value}" if value else str(pool)


def table(results: dict, dataset: str, methods: list[str], settings: list[str], models: list[str]) -> str:
    lines = [f"| method | guides | {model_header(models)} | condense (s) |", "|---|---|" + "---|" * (len(models) + (len(models) > 1) + 1)]
    for method in methods:
        for setting in settings:
            row = model_columns([results.get(f"{dataset}/{method}/{setting}/{m}") for m in models])
            made = results.get(f"{dataset}/{method}/{setting}/condense")
            row.append(f"{made['seconds']:.0f}" if made else "-")
            lines.append(f"| {method} | {setting} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--ipc", type=int, default=1)
    parser.add_argument("--methods", default="dc,dm")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--dc-iterations", type=int, default=100)
    parser.add_argument("--dm-iterations", type=int, default=200)
    parser.add_argument("--guide-weight", type=float, default=1.0)
    parser.add_argument("--pool-models", default="convnet,lenet,mlp")
    parser.add_argument("--pool-seeds", default="0,1")
    parser.add_argument("--pool-epochs", default="1,2", help="checkpoints kept: the first is the early one, the last the final")
    parser.add_argument("--models", default="convnet,mlp,lenet,alexnet", help="evaluation models; the first is the training one")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="runs/guidance")
    add_results_arguments(parser, "benchmarks/results/guidance_table.json")
    args = parser.parse_args()

    device = ds.resolve_device(args.device)
    path, results = open_results(args)
    methods, settings, models = args.methods.split(","), args.settings.split(","), args.models.split(",")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise SystemExit(f"unknown guide setting(s) {', '.join(unknown)}; choose from {', '.join(SETTINGS)}")
    if not args.table:
        pool = Path(args.out) / f"pool-{args.dataset}"
        epochs = sorted(int(e) for e in args.pool_epochs.split(","))
        index = train_pool(args.dataset, pool, PoolConfig(models=args.pool_models.split(","),
                                                          seeds=[int(s) for s in args.pool_seeds.split(",")], epochs=epochs),
                           data_root=args.data_root, device=str(device))
        for member in index["members"]:
            print(f"pool member {member['file']}: test accuracy {100 * member['test_accuracy']:.2f}%", flush=True)
        data = ds.load_dataset(args.dataset, data_root=args.data_root)
        iterations = {"dc": args.dc_iterations, "dsa": args.dc_iterations, "dm": args.dm_iterations}
        for method in methods:
            for setting in settings:
                spec = guide_spec(setting, pool, args.pool_models.split(",")[0], epochs[0], epochs[-1])
                options = {"guide_models": spec, "guide_weight": args.guide_weight} if spec else {}
                try:
                    outcome = ds.run_condense(method, args.dataset, args.ipc, Path(args.out) / f"{method}-{setting}",
                                           iterations=iterations.get(method), data_root=args.data_root, device=str(device),
                                           options=options, progress=False, log=lambda message: None)
                except ds.DistillsetError as exc:
                    raise SystemExit(f"{method}, guides '{setting}': {exc}") from None
                key = f"{args.dataset}/{method}/{setting}"
                if f"{key}/condense" not in results:  # per-iteration time: a resumed run's total would count one call only
                    per_iteration = outcome.record["timings_s"]["seconds_per_iteration"]
                    results[f"{key}/condense"] = {"seconds": per_iteration * iterations.get(method), "seconds_per_iteration": per_iteration,
                                                  "guides": spec, "iterations": iterations.get(method), "ipc": args.ipc}
                    atomic_write_json(path, results)
                for model in models:
                    cell = measure_runs(results, f"{key}/{model}", path, outcome.synset, data, args.runs, args.epochs, device,
                                        model=model, extra={"guides": spec, "iterations": iterations.get(method)})
                    print(f"{key}/{model}: {100 * cell['mean']:.2f} +- {100 * cell['std']:.2f} ({cell['seconds']:.0f} s)", flush=True)
    print(table(results, args.dataset, methods, settings, models))


if __name__ == "__main__":
    main()
