"""Evaluation protocol speed: K fresh ConvNets trained one after another vs all at once (vmap).

For ipc 1 and 10 (random real subsets of MNIST), times both strategies in the same run on the same
device, reports the ratio, the accuracy distributions of both (they train the same networks), which
strategy `auto` picks on this device, and the sequential path's fraction of the FLOP floor
(FLOPs counted by PyTorch / the fp32 matmul rate measured at the start of the run).

    python benchmarks/eval_speed.py --data-root ../shared/data --runs 20 --epochs 300 --device cuda
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from common import forward_flops, matmul_gflops, sync, train_step_flops  # noqa: E402

import distillset as ds  # noqa: E402
from distillset.models import build_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-root")
    parser.add_argument("--ipc", default="1,10")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--strategies", default="sequential,batched")
    args = parser.parse_args()


    device = ds.resolve_device(args.device)
    data = ds.load_dataset(args.dataset, data_root=args.data_root)
    real = ds.real_data(data, "train", device)
    rate = matmul_gflops(device)
    auto = "batched" if device.type == "cuda" else "sequential"
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, fp32 matmul {rate:.0f} GFLOP/s; "
          f"{args.runs} x {args.model} x {args.epochs} epochs; auto picks '{auto}'")
    print("| ipc | strategy | seconds | ratio vs sequential | accuracy (%) | fraction of FLOP floor |")
    print("|---|---|---|---|---|---|")
    for ipc in [int(v) for v in args.ipc.split(",")]:
        synset = ds.make_coreset("random", real, ipc, seed=0)
        n = len(synset)
        probe = build_model(args.model, synset.shape, synset.num_classes, device=device)
        step = train_step_flops(probe, synset.images[: min(n, 256)].to(device), synset.labels[: min(n, 256)].to(device))
        test_flops = forward_flops(probe, real.images[:256]) * len(data.test_labels) / 256
        total = args.runs * (args.epochs * step * (n / min(n, 256)) + test_flops)
        floor = total / (rate * 1e9)
        timings = {}
        for strategy in args.strategies.split(","):
            sync(device)
            start = time.perf_counter()
            result = ds.evaluate_synset(synset, data.test_images, data.test_labels, models=[args.model], runs=args.runs,
                                        epochs=args.epochs, seed=0, device=device, strategy=strategy).results[args.model]
            sync(device)
            seconds = time.perf_counter() - start
            timings[strategy] = seconds
            ratio = timings.get("sequential", seconds) / seconds
            print(f"| {ipc} | {strategy} | {seconds:.1f} | {ratio:.2f}x | {100 * result.mean:.2f} +- {100 * result.std:.2f} | "
                  f"{floor / seconds:.0%} |", flush=True)
    print(f"faster here: {'batched' if timings.get('batched', 1e18) < timings.get('sequential', 1e18) else 'sequential'} (last ipc)")


if __name__ == "__main__":
    main()
