"""SGDD's optimal-transport weight: does the LED term move the synthetic graph's LED, and at what cost in accuracy?

The structure generator of SGDD is trained on the gradient-matching loss plus ``ot_weight`` times the
1-Wasserstein distance between the synthetic and original (binned) Laplacian energy distributions. The
term only steers the structure if its gradient is not negligible next to the matching loss's, so each cell
also reports, for the first structure epoch, the ratio of the two gradient norms on the generator's
parameters. Each cell (dataset, reduction, weight, seed) condenses with SGDD and is evaluated with the
GCond protocol (--runs GCNs, real validation split for selection, real test split) and the LED shift.
Cells are stored in --results as they finish (atomic JSON) and skipped when present.

    OMP_NUM_THREADS=1 python benchmarks/sgdd_ot_weight.py --data-root ../shared/data --weights 1,10,100 --seeds 0,1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from common import add_results_arguments, open_results
from distillset.fileio import atomic_write_json
from distillset.graph.data import load_graph
from distillset.graph.evaluate import evaluate_graph
import distillset as ds
from distillset.graph.led import energy_distribution, graph_led, led_shift


def gradient_ratio(engine, state) -> float:
    """||d(OT term)/d(generator)|| / ||d(matching loss)/d(generator)|| at the engine's current state.

    Measured on one fresh matching network's first outer step, the place where the structure epoch's
    first update is decided."""
    ratios: list[float] = []
    structure_loss = engine.structure_loss
    step = engine.opt_structure.step
    params = list(engine.pge.parameters())
    captured: dict[str, float] = {}

    def recording_structure_loss(adjacency: torch.Tensor) -> torch.Tensor:
        value = structure_loss(adjacency)
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        captured["ot"] = float(torch.sqrt(sum((g ** 2).sum() for g in grads if g is not None)))
        return value

    def recording_step(*args, **kwargs):
        total = float(torch.sqrt(sum((p.grad ** 2).sum() for p in params if p.grad is not None)))
        if "ot" in captured and not ratios:
            ratios.append(captured["ot"] / max(total, 1e-30))
        return step(*args, **kwargs)

    engine.structure_loss, engine.opt_structure.step = recording_structure_loss, recording_step
    try:
        engine.step(state)
    finally:
        engine.structure_loss, engine.opt_structure.step = structure_loss, step
    return ratios[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--dataset", default="cora")
    parser.add_argument("--reduction", type=float, default=0.25)
    parser.add_argument("--weights", default="1,10,100")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=600)
    parser.add_argument("--runs", type=int, default=3, help="GCNs per condensed graph")
    parser.add_argument("--eval-epochs", type=int, default=600, help="epochs of each evaluation GCN")
    add_results_arguments(parser, "benchmarks/results/sgdd_ot_weight.json")
    args = parser.parse_args()
    path, results = open_results(args)
    if not args.table:
        data = load_graph(args.dataset, args.data_root)
        original = graph_led(data)
        for seed in [int(s) for s in args.seeds.split(",")]:
            for weight in [float(w) for w in args.weights.split(",")]:
                key = f"{args.dataset}/{args.reduction:g}/{weight:g}/{seed}"
                if key in results:
                    continue
                start = time.perf_counter()
                spec = ds.get_method("sgdd", "graph")
                engine = spec.build(data, spec.make_config({"reduction": args.reduction, "epochs": args.epochs, "seed": seed,
                                                            "ot_weight": weight}))
                state = engine.initial_state()
                ratio = gradient_ratio(engine, state)  # epoch 0 is a structure epoch; it counts as the first of --epochs
                while state.iteration < engine.total_steps:
                    engine.step(state)
                synset = engine.to_synset(state)
                seconds = time.perf_counter() - start
                accs = evaluate_graph(synset, data, ["gcn"], runs=args.runs, epochs=args.eval_epochs, seed=seed)["gcn"].accs
                shift = led_shift(original, energy_distribution(synset.features, synset.adjacency))
                results[key] = {"accs": accs, "led_shift": shift, "ot_gradient_ratio": ratio,
                                "mean_degree": float(synset.adjacency.sum(1).mean()), "condense_seconds": seconds,
                                "date": time.strftime("%Y-%m-%d")}
                atomic_write_json(path, results)
                print(f"{key}: GCN {100 * np.mean(accs):.2f}, LED shift {shift:.4f}, OT/total gradient {ratio:.3f} "
                      f"({seconds:.0f} s)", flush=True)
    print(table(results))


def table(results: dict) -> str:
    groups: dict[tuple, list[dict]] = {}
    for key, cell in results.items():
        dataset, reduction, weight, _ = key.split("/")
        groups.setdefault((dataset, float(reduction), float(weight)), []).append(cell)
    lines = ["| dataset | r | OT weight | GCN (%) | LED shift | OT/total gradient (epoch 1) | mean degree | seeds |",
             "|---|---|---|---|---|---|---|---|"]
    for (dataset, reduction, weight), cells in sorted(groups.items()):
        accs = [100 * np.mean(c["accs"]) for c in cells]
        lines.append(f"| {dataset} | {reduction:g} | {weight:g} | {np.mean(accs):.2f} +- {np.std(accs):.2f} | "
                     f"{np.mean([c['led_shift'] for c in cells]):.4f} | {np.mean([c['ot_gradient_ratio'] for c in cells]):.3f} | "
                     f"{np.mean([c['mean_degree'] for c in cells]):.2f} | {len(cells)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
