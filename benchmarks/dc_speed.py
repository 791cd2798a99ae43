"""Gradient-matching speed: one DC matching step (per-class real and synthetic gradients, distance,
image update) three ways: a straightforward per-class loop (eager; the reference), one batched pass
over all classes with per-class weight gradients, and the per-class loop through torch.compile (the
CPU default; its one-off compile is excluded from the step time and reported separately).

Both implementations run in the same process on the same network, data and draws; the table gives
seconds per matching step, the ratio, the FLOPs PyTorch counts for the step, and the fraction of the
floor (FLOPs / the fp32 matmul rate measured at the start of the run).

    python benchmarks/dc_speed.py --data-root ../shared/data --ipc 1,10 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from common import matmul_gflops, sync  # noqa: E402

import distillset as ds  # noqa: E402
from distillset.methods.gradient_matching import GradientMatching, GradientMatchingConfig, matched_parameters  # noqa: E402
from distillset.models import build_model  # noqa: E402


def matching_step(engine: GradientMatching, net, params, images, labels, optimizer, seed: int) -> None:
    loss = engine.matching_loss(net, params, images, labels, torch.Generator().manual_seed(seed))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-root")
    parser.add_argument("--ipc", default="1,10")
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dsa", action="store_true")
    parser.add_argument("--end-to-end", action="store_true",
                        help="also run the command line's driver for repeats+1 iterations and report its s / iteration")
    args = parser.parse_args()
    device = ds.resolve_device(args.device)
    data = ds.load_dataset(args.dataset, data_root=args.data_root)
    real = ds.real_data(data, "train", device)
    rate = matmul_gflops(device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, fp32 matmul {rate:.0f} GFLOP/s; "
          f"{args.dataset}, {args.model}, {'DSA' if args.dsa else 'DC'}, median of {args.repeats} matching steps")
    print("| ipc | implementation | s / step | speed-up vs loop | GFLOP / step | fraction of floor |")
    print("|---|---|---|---|---|---|")
    for ipc in [int(v) for v in args.ipc.split(",")]:
        cfg = GradientMatchingConfig(ipc=ipc, model=args.model, dsa=args.dsa, init="real", compile=False)
        compiled_cfg = GradientMatchingConfig(ipc=ipc, model=args.model, dsa=args.dsa, init="real", compile=True)
        engines = {"per-class loop": GradientMatching(real, cfg, batched=False), "batched": GradientMatching(real, cfg, batched=True),
                   "per-class compiled": GradientMatching(real, compiled_cfg, batched=False)}
        state = engines["batched"].initial_state()
        net = build_model(args.model, real.shape, real.num_classes, torch.Generator().manual_seed(0), device)
        params = matched_parameters(net, engines["batched"].config.distance)
        flops = None
        times = {}
        for name, engine in engines.items():
            images = state.images.clone().requires_grad_(True)
            optimizer = torch.optim.SGD([images], lr=0.1, momentum=0.5)
            start = time.perf_counter()
            matching_step(engine, net, params, images, state.labels, optimizer, 0)  # warm-up (and compile)
            warmup = time.perf_counter() - start
            if flops is None:
                with FlopCounterMode(display=False) as counter:
                    matching_step(engine, net, params, images, state.labels, optimizer, 0)
                flops = counter.get_total_flops()
            samples = []
            for r in range(args.repeats):
                sync(device)
                start = time.perf_counter()
                matching_step(engine, net, params, images, state.labels, optimizer, r + 1)
                sync(device)
                samples.append(time.perf_counter() - start)
            times[name] = statistics.median(samples)
            if engine.config.compile:
                print(f"(ipc {ipc}: first step with compilation {warmup:.1f} s)", flush=True)
        if args.end_to_end and ipc == 1:  # at ipc 1 an iteration is one matching step (no inner training)
            times["end to end (CLI, s / iteration)"] = end_to_end(args, ipc, device)
        for name, seconds in times.items():
            floor = flops / (rate * 1e9)
            print(f"| {ipc} | {name} | {seconds:.2f} | {times['per-class loop'] / seconds:.2f}x | {flops / 1e9:.0f} | {floor / seconds:.0%} |",
                  flush=True)


def end_to_end(args, ipc: int, device) -> float:
    """What a user's `distillset condense --method dc` costs per iteration (the driver's steady-state figure in
    run.json: fresh network, matching step, inner training, checkpoints; the first iteration, which carries the
    one-off compile, excluded), for ``repeats`` iterations after the first."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        options = {"ipc": ipc, "model": args.model, "init": "real", "iterations": args.repeats + 1, "compile": True}
        ds.run_method("dsa" if args.dsa else "dc", args.dataset, folder, options, data_root=args.data_root, device=str(device),
                      progress=False, log=lambda message: None)
        return json.loads((Path(folder) / "run.json").read_text())["timings_s"]["seconds_per_iteration"]


if __name__ == "__main__":
    main()
