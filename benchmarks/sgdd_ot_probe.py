"""What SGDD's transport term does to the structure in its first structure epochs, for candidate formulations.

A probe, not a method: it runs SGDD on Cora with every epoch a structure epoch (so the term acts from the start)
and reports, every ``--every`` epochs, the generated graph's mean degree and homophily (the share of its edge
weight, after GCond's 0.01 threshold, between nodes of one class) and the term's value (the W2 distance). The
formulations are SGDD's options:

* ``--formulation ridge``: Sigma = (L + gamma I)^-1 for both graphs (``ot_null_space`` off). Its null space (one
  direction per connected component, D^1/2 1 on the component) gets 1/gamma = 100, which dominates both sides.
* ``--formulation null``: each graph's null space projected out (``ot_null_space``): GOT's L^+ regularised on the
  rest of the spectrum (the release's inverse drops the smallest singular value likewise).

``--plan-mass`` is ``plan_mass``: unit (each synthetic node receives one unit of original mass) or even (m/n: every
original node gives one unit).

    OMP_NUM_THREADS=1 python benchmarks/sgdd_ot_probe.py --data-root ../shared/data --formulation null --plan-mass even
"""

from __future__ import annotations

import argparse
import time

import torch

import distillset as ds
from distillset.graph.data import load_graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--formulation", choices=("ridge", "null"), default="ridge")
    parser.add_argument("--plan-mass", choices=("unit", "even"), default="unit")
    parser.add_argument("--weight", type=float, default=1.0, help="OT weight (0: the term off, the baseline)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--every", type=int, default=10, help="report every this many epochs")
    parser.add_argument("--reduction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = load_graph("cora", args.data_root)
    spec = ds.get_method("sgdd", "graph")
    engine = spec.build(data, spec.make_config({
        "reduction": args.reduction, "seed": args.seed, "ot_weight": args.weight, "ot_null_space": args.formulation == "null",
        "plan_mass": args.plan_mass, "structure_epochs": args.epochs + 1, "feature_epochs": 1}))

    def report(epoch: int) -> None:
        with torch.no_grad():
            generated = engine.adjacency()
            value = f"{float(engine.structure_loss(generated)) / args.weight:.4f}" if args.weight > 0 else "-"
            a = generated.double()
            a = torch.where(a < engine.config.threshold, torch.zeros_like(a), a)
            same = (engine.labels[:, None] == engine.labels[None, :]).double()
            print(f"| {args.formulation} | {args.plan_mass} | {args.weight:g} | {epoch} | {float(a.sum(1).mean()):.2f} | "
                  f"{float((a * same).sum() / a.sum()):.3f} | {value} |", flush=True)

    print("| formulation | plan mass | weight | structure epochs | mean degree | homophily | W2 |\n|---|---|---|---|---|---|---|")
    state = engine.initial_state()
    report(0)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        engine.step(state)
        if epoch % args.every == 0:
            report(epoch)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
