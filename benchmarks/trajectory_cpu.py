"""Trajectory matching on a CPU budget: experts -> MTT, DATM and DD, against DC and DSA at the same ipc.

Every method condenses the same dataset at the same ipc for --iterations iterations (seed 0), and
every set is evaluated by the same evaluator (--runs fresh ConvNets x --epochs, no augmentation,
final-epoch accuracy, lr = the set's learned lr where it has one (MTT/DATM), else 0.01; soft labels
where the set has them). Each cell is stored in --results as soon as it is measured (atomic JSON), so
an interrupted run resumes. The experts must exist (``distillset experts ... --out EXPERTS``); their
budget is read from the folder's index and printed with the table.

    python benchmarks/trajectory_cpu.py --dataset fashion-mnist --ipc 1 --experts-dir runs/experts/fashion-mnist-convnet
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import distillset as ds
from distillset.fileio import atomic_write_json

METHODS = ("dc", "dsa", "dm", "mtt", "datm", "dd")


def method_options(method: str, args) -> dict:
    """The per-method settings of this CPU budget (the papers' where they fit, see BENCHMARKS.md)."""
    trajectory = {"experts_dir": args.experts_dir, "syn_steps": args.syn_steps, "expert_epochs": args.expert_epochs,
                  "max_start_epoch": args.max_start_epoch, "lr_img": args.lr_img_tm, "lr_lr": 1e-5}
    return {
        "dc": {},
        "dsa": {},
        "dm": {},
        "mtt": trajectory,
        "datm": {**trajectory, "min_start_epoch": 0, "current_max_start_epoch": 1, "expansion_end": max(1, args.iterations // 2)},
        "dd": {},
    }[method]


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
        key = f"{args.dataset}/{method}/ipc{args.ipc}/it{args.iterations}"
        if key in results and len(results[key]["accs"]) >= args.runs:
            continue
        start = time.perf_counter()
        options = method_options(method, args)
        outcome = ds.run_condense(method, args.dataset, args.ipc, Path(args.out) / key.replace("/", "-"), iterations=args.iterations,
                               data_root=args.data_root, device=args.device, options=options, progress=False, log=lambda m: None)
        condense_seconds = time.perf_counter() - start
        evaluation = ds.evaluate_synset(outcome.synset, data.test_images, data.test_labels, runs=args.runs, epochs=args.epochs,
                                        seed=0, device=device)
        result = evaluation.results["convnet"]
        experts = experts_budget(args.experts_dir) if method in ("mtt", "datm") else None
        results[key] = {"mean": result.mean, "std": result.std, "accs": result.accs, "condense_seconds": condense_seconds,
                        "experts": experts,
                        "eval": {k: evaluation.config[k] for k in ("epochs", "lr", "soft_labels")}, "options": options,
                        "date": time.strftime("%Y-%m-%d"), "environment": ds.environment(), "device": str(device)}
        atomic_write_json(path, results)
        print(f"{key}: {100 * result.mean:.2f} +- {100 * result.std:.2f} (condense {condense_seconds:.0f} s)", flush=True)
    index = json.loads((Path(args.experts_dir) / "index.json").read_text()) if Path(args.experts_dir, "index.json").is_file() else None
    if index:
        accs = [e["test_accuracy"] for e in index["experts"] if e["test_accuracy"] is not None]
        print(f"experts: {len(index['experts'])} x {index['config']['epochs']} epochs, {index['model']}, "
              f"test accuracy {', '.join(f'{100 * a:.2f}' for a in accs)}")
    print("| method | iterations | accuracy (%) | eval lr | condense (s) |\n|---|---|---|---|---|")
    for key, cell in sorted(results.items()):
        if key.startswith(f"{args.dataset}/") and f"/ipc{args.ipc}/" in key:
            print(f"| {key.split('/')[1]} | {key.split('/it')[-1]} | {100 * cell['mean']:.2f} +- {100 * cell['std']:.2f} "
                  f"({len(cell['accs'])}) | {cell['eval']['lr']:.4g} | {cell['condense_seconds']:.0f} |")


if __name__ == "__main__":
    main()
