"""Dataset Quantization against random and herding subsets, on ConvNet and across architectures.

DQ's claim is that its subsets are architecture-independent: a network other than the one whose
features chose the subset should gain as much from it as the ConvNet does. Each cell selects a
class-balanced subset of --ratios of the training set (seed 0; herding and DQ share the cached
ConvNet feature network), then trains --runs fresh networks of each of --models on it and tests them
on the real test split (final epoch). Every run is stored in --results as soon as it ends, so the
table resumes and can be completed across sessions or merged from parallel processes (--merge).

Training budget: each network sees --images-seen training images (epochs = images-seen / subset size,
at least 1), so every ratio costs about the same; --epochs fixes the epochs instead.

    python benchmarks/dq_table.py --data-root ../shared/data --datasets fashion-mnist --ratios 0.01,0.05,0.1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import distillset as ds
from distillset.methods import ipc_for_ratio

from common import add_results_arguments, measure_runs, model_columns, model_header, open_results, stored_runs  # noqa: E402

METHODS = ("dq", "random", "herding")
MODELS = ("convnet", "mlp", "lenet", "resnet18")


def schedule(images_seen: int, size: int, epochs: int | None) -> int:
    return epochs if epochs else max(1, round(images_seen / size))


def table(results: dict, dataset: str, ratio: float, methods: list[str], models: list[str]) -> str:
    """Rows are methods; a column per model, then the mean over the models other than the first (the
    feature network's architecture), which is where architecture-independence shows."""
    lines = [f"{dataset}, {100 * ratio:g}% of the training set", "", f"| method | {model_header(models)} |",
             "|---|" + "---|" * (len(models) + (len(models) > 1))]
    for method in methods:
        row = model_columns([results.get(f"{dataset}/{method}/{ratio:g}/{m}") for m in models])
        lines.append(f"| {method} | " + " | ".join(row) + " |")
    epochs = sorted({results[k]["epochs"] for k in results if k.startswith(f"{dataset}/") and f"/{ratio:g}/" in k})
    if epochs:
        lines += ["", f"epochs per network: {', '.join(map(str, epochs))}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--datasets", default="mnist,fashion-mnist")
    parser.add_argument("--ratios", default="0.01,0.05,0.1")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--models", default=",".join(MODELS), help="the first is the feature network's architecture")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model-runs", default="", help="fewer runs for costly models, e.g. resnet18=1")
    parser.add_argument("--images-seen", type=int, default=60000, help="training images per network (sets the epochs)")
    parser.add_argument("--epochs", type=int, help="fixed epochs per network instead of --images-seen")
    parser.add_argument("--feature-epochs", type=int, default=3)
    parser.add_argument("--bins", type=int, default=10, help="DQ: GraphCut bins per class")
    parser.add_argument("--device", default="auto")
    add_results_arguments(parser, "benchmarks/results/dq_table.json")
    args = parser.parse_args()

    device = ds.resolve_device(args.device)
    path, results = open_results(args)
    datasets, ratios = args.datasets.split(","), [float(r) for r in args.ratios.split(",")]
    methods, models = args.methods.split(","), args.models.split(",")
    runs = {m: args.runs for m in models} | {m: int(n) for m, _, n in (p.partition("=") for p in args.model_runs.split(",") if p)}
    if not args.table:
        for dataset in datasets:
            data = ds.load_dataset(dataset, data_root=args.data_root)
            real = ds.real_data(data, "train", device)
            for model in models:  # refuse a model the data's shape does not fit before anything is trained
                try:
                    ds.build_model(model, real.shape, real.num_classes)
                except ds.DistillsetError as exc:
                    raise SystemExit(str(exc)) from None
            for ratio in ratios:
                ipc = ipc_for_ratio(ratio, real)
                epochs = schedule(args.images_seen, ipc * real.num_classes, args.epochs)
                for method in methods:
                    keys = {m: f"{dataset}/{method}/{ratio:g}/{m}" for m in models}
                    if all(set(range(runs[m])) <= set(stored_runs(results, k, epochs)) for m, k in keys.items()):
                        continue
                    options = {"bins": args.bins} if method == "dq" else {}
                    synset = ds.make_coreset(method, real, ipc, seed=0, feature_epochs=args.feature_epochs, **options)
                    for model, key in keys.items():
                        cell = measure_runs(results, key, path, synset, data, runs[model], epochs, device, model=model,
                                            extra={"ipc": ipc, "feature_epochs": args.feature_epochs,
                                                   **({"bins": args.bins} if method == "dq" else {})})
                        print(f"{key}: {100 * cell['mean']:.2f} +- {100 * cell['std']:.2f} ({cell['seconds']:.0f} s, "
                              f"{epochs} epochs)", flush=True)
    for dataset in datasets:
        for ratio in ratios:
            print(table(results, dataset, ratio, methods, models))
            print()


if __name__ == "__main__":
    main()
