"""Training step speed of one evaluation network, eager against torch.compile (``TrainConfig.compile``).

Both modes train fresh ConvNets on the same stored set with the set's evaluation augmentation, alternating
eager and compiled in every round so that a neighbour process slows both alike; the compile itself is paid
before the clock starts (its one-off cost is printed apart). Also prints how far the compiled weights drift
from the eager ones after the timed steps from the same initialisation and draws (rounding, not a bug).

    OMP_NUM_THREADS=1 python benchmarks/compile_speed.py --set benchmarks/results/ledger/sets/herding-mnist-ipc50-s0
"""

from __future__ import annotations

import argparse
import time

import torch

import distillset as ds
from distillset.augment.dc import DCAugment
from distillset.models import build_model
from distillset.synset import SynSet
from distillset.training import TrainConfig, train_model


def timed_steps(synset: SynSet, compile: bool, seed: int, steps: int) -> tuple[float, torch.nn.Module]:
    net = build_model("convnet", synset.shape, synset.num_classes, torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    train_model(net, synset.images, synset.labels, TrainConfig(epochs=1, compile=compile), torch.Generator().manual_seed(seed),
                DCAugment(), max_steps=steps)
    return (time.perf_counter() - start) / steps, net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", default="benchmarks/results/ledger/sets/herding-mnist-ipc50-s0",
                        help="a folder holding synset.safetensors (or the file)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30, help="timed minibatch steps per mode and round")
    args = parser.parse_args()
    ds.retain_freed_memory()
    path = args.set if args.set.endswith(".safetensors") else f"{args.set}/synset.safetensors"
    synset = SynSet.load(path)
    for compile in (False, True):  # the one-off costs: first steps, and for compile the compilation
        start = time.perf_counter()
        timed_steps(synset, compile, 0, 3)
        print(f"first 3 steps, {'compiled' if compile else 'eager'}: {time.perf_counter() - start:.1f} s")
    per_step = {False: [], True: []}
    nets = {}
    for r in range(args.rounds):
        for compile in (False, True):
            seconds, nets[compile] = timed_steps(synset, compile, r, args.steps)
            per_step[compile].append(seconds)
    drift = max(float((a.detach() - b.detach()).abs().max()) for a, b in zip(nets[False].parameters(), nets[True].parameters()))
    eager, compiled = (sum(per_step[m]) / args.rounds for m in (False, True))
    print(f"\n| set | images | threads | eager ms/step | compiled ms/step | ratio | max weight difference after "
          f"{args.steps} steps |\n|---|---|---|---|---|---|---|")
    print(f"| {path} | {len(synset.labels)} | {torch.get_num_threads()} | {1000 * eager:.0f} | {1000 * compiled:.0f} | "
          f"{eager / compiled:.2f}x | {drift:.1e} |")


if __name__ == "__main__":
    main()
