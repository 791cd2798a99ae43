"""Trajectory matching on a CPU budget: experts -> MTT, DATM and DD, against DC and DSA at the same ipc.

Every method condenses the same dataset at the same ipc for --iterations iterations (seed 0). With
``--evaluation published`` (the default) every set is evaluated as its method's paper does (the evaluation
the method declares: DSA and 1000 epochs for DSA/MTT/DATM, at batch 128 for DATM; the DC code's augmentation
for DC and DD, none on FashionMNIST, 300 epochs); ``--evaluation plain`` trains every set the same way
(--epochs, no augmentation), the protocol of the table measured before 2026-12-03. Final-epoch accuracy of
--runs fresh ConvNets; lr = the set's learned lr where it has one (MTT/DATM), else 0.01; soft labels where the
set has them. Each cell is stored in --results as soon as it is measured (atomic JSON), so an interrupted run
resumes. The experts must exist (``distillset experts ... --out EXPERTS``; DATM's may be other, GSAM-trained
ones: --datm-experts-dir); their budget is read from the folder's index and stored with the cell. DATM starts
from its published setting for the dataset and ipc (presets), with this budget's syn_steps, expert_epochs and
max_start_epoch in place of the preset's (equal budgets).

    python benchmarks/trajectory_cpu.py --dataset fashion-mnist --ipc 1 --experts-dir runs/experts/fashion-mnist-convnet \
        --datm-experts-dir runs/experts/fashion-mnist-convnet-gsam
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import distillset as ds
from distillset.evaluation.files import model_protocol
from distillset.fileio import atomic_write_json

METHODS = ("dc", "dsa", "dm", "mtt", "datm", "dd")


def method_options(method: str, args) -> dict:
    """The per-method settings of this CPU budget (the papers' where they fit, see BENCHMARKS.md)."""
    budget = {"syn_steps": args.syn_steps, "expert_epochs": args.expert_epochs, "max_start_epoch": args.max_start_epoch}
    trajectory = {"experts_dir": args.experts_dir, **budget, "lr_img": args.lr_img_tm, "lr_lr": 1e-5}
    if args.evaluation == "plain":  # the settings of the table measured before 2026-12-03
        datm = {**trajectory, "min_start_epoch": 0, "current_max_start_epoch": 1, "expansion_end": max(1, args.iterations // 2)}
    else:  # DATM's published setting (presets), this budget's unroll and window; its own (GSAM) experts
        datm = {"experts_dir": args.datm_experts_dir or args.experts_dir, **budget, "current_max_start_epoch": -1}
    return {"dc": {}, "dsa": {}, "dm": {}, "mtt": trajectory, "datm": datm, "dd": {}}[method]


def experts_budget(experts_dir: str) -> dict | None:
    """What the experts a trajectory cell used cost and reached (from the folder's index), stored with the cell."""
    index_path = Path(experts_dir) / "index.json"
    if not index_path.is_file():
        return None
    index = json.loads(index_path.read_text())
    return {"experts": len(index["experts"]), "epochs": index["config"]["epochs"], "model": index["model"],
            "test_accuracy": [e["test_accuracy"] for e in index["experts"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--ipc", type=int, default=1)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--experts-dir", default="runs/experts/fashion-mnist-convnet")
    parser.add_argument("--datm-experts-dir", help="DATM's experts (default: --experts-dir)")
    parser.add_argument("--evaluation", choices=("published", "plain"), default="published",
                        help="each set with its method's published evaluation, or all the same way (--epochs, no augmentation)")
    parser.add_argument("--syn-steps", type=int, default=50)
    parser.add_argument("--expert-epochs", type=int, default=2)
    parser.add_argument("--max-start-epoch", type=int, default=2)
    parser.add_argument("--lr-img-tm", type=float, default=100.0, help="image lr of MTT/DATM")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="runs/bench-trajectory")
    parser.add_argument("--results", default="benchmarks/results/trajectory_cpu.json")
    args = parser.parse_args()

    device = ds.resolve_device(args.device)
    path = Path(args.results)
    results = json.loads(path.read_text()) if path.is_file() else {}
    data = ds.load_dataset(args.dataset, data_root=args.data_root)
    for method in args.methods.split(","):
        key = f"{args.dataset}/{method}/ipc{args.ipc}/it{args.iterations}" + ("" if args.evaluation == "plain" else "/published")
        if key in results and len(results[key]["accs"]) >= args.runs:
            continue
        start = time.perf_counter()
        options = method_options(method, args)
        outcome = ds.run_condense(method, args.dataset, args.ipc, Path(args.out) / key.replace("/", "-"), iterations=args.iterations,
                               data_root=args.data_root, device=args.device, options=options, progress=False, log=lambda m: None)
        condense_seconds = time.perf_counter() - start
        declared = outcome.synset.config.get("evaluation", {}) if args.evaluation == "published" else {}
        augment, protocol = model_protocol(declared, args.dataset, "convnet", epochs=None if declared else args.epochs)
        evaluation = ds.evaluate_synset(outcome.synset, data.test_images, data.test_labels, runs=args.runs, epochs=protocol["epochs"],
                                        seed=0, device=device, augment=augment, batch_size=protocol["batch_size"],
                                        use_soft_labels=protocol["soft_labels"])
        result = evaluation.results["convnet"]
        experts = experts_budget(options["experts_dir"]) if method in ("mtt", "datm") else None
        results[key] = {"mean": result.mean, "std": result.std, "accs": result.accs, "condense_seconds": condense_seconds,
                        "experts": experts,
                        "eval": {**{k: evaluation.config[k] for k in ("epochs", "lr", "soft_labels")}, **protocol},
                        "options": options,
                        "date": time.strftime("%Y-%m-%d"), "environment": ds.environment(), "device": str(device)}
        atomic_write_json(path, results)
        print(f"{key}: {100 * result.mean:.2f} +- {100 * result.std:.2f} (condense {condense_seconds:.0f} s)", flush=True)
    index = json.loads((Path(args.experts_dir) / "index.json").read_text()) if Path(args.experts_dir, "index.json").is_file() else None
    if index:
        accs = [e["test_accuracy"] for e in index["experts"] if e["test_accuracy"] is not None]
        print(f"experts: {len(index['experts'])} x {index['config']['epochs']} epochs, {index['model']}, "
              f"test accuracy {', '.join(f'{100 * a:.2f}' for a in accs)}")
    print("| method | iterations | evaluation | accuracy (%) | eval lr | condense (s) |\n|---|---|---|---|---|---|")
    for key, cell in sorted(results.items()):
        if key.startswith(f"{args.dataset}/") and f"/ipc{args.ipc}/" in key:
            how = f"{cell['eval'].get('augment', 'none')}, {cell['eval']['epochs']} ep, batch {cell['eval'].get('batch_size', 256)}"
            print(f"| {key.split('/')[1]} | {key.split('/it')[-1].split('/')[0]} | {how} | {100 * cell['mean']:.2f} +- "
                  f"{100 * cell['std']:.2f} ({len(cell['accs'])}) | {cell['eval']['lr']:.4g} | {cell['condense_seconds']:.0f} |")


if __name__ == "__main__":
    main()
