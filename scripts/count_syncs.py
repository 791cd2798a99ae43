"""Count the host-device synchronisations and copies of one DSA matching iteration on CUDA (torch.profiler).

    python scripts/count_syncs.py --data-root .data

Prints the counts of the CUDA runtime calls that wait for the stream or copy memory, for one DSA iteration of
MNIST at ipc 10, after one warm-up iteration. Part of scripts/gpu_check.sh.
"""

from __future__ import annotations

import argparse
import collections

import torch

import distillset as ds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root")
    parser.add_argument("--ipc", type=int, default=10)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this count needs one")
    from distillset.methods.gradient_matching import DSAConfig, GradientMatching

    real = ds.real_data(ds.load_dataset("mnist", data_root=args.data_root), "train", "cuda")
    engine = GradientMatching(real, DSAConfig(ipc=args.ipc, iterations=3, compile=False))
    state = engine.initial_state()
    engine.step(state)  # warm-up
    torch.cuda.synchronize()
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        engine.step(state)
        torch.cuda.synchronize()
    counts = collections.Counter()
    for event in prof.events():
        name = event.name
        if any(k in name for k in ("Synchronize", "Memcpy", "memcpy")):
            counts[name] += 1
    for name, count in counts.most_common():
        print(f"{count:8d}  {name}")
    print(f"one DSA iteration at ipc {args.ipc}: {sum(counts.values())} synchronising or copying runtime calls")


if __name__ == "__main__":
    main()
