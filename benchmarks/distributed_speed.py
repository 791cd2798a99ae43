"""Speed of torchrun condensation: 1 process vs P processes on this machine, and a scaling model.

Each configuration runs ``distillset condense`` from scratch for --iterations iterations and reads the
measured seconds per iteration from run.json (data loading excluded). On a 2-core CPU the fair pair is
1 process x 2 threads against 2 processes x 1 thread (same cores); 1 process x 1 thread is printed too.

From the two timings the per-iteration time is split into a part that shards across ranks (the
class-wise matching) and a part every rank repeats (DC's inner training of the network on the
synthetic set, data sampling): t(P) = shard / P + repeated + comm(P), with
comm(P) = messages x (latency + 2 (P - 1) / P x bytes / bandwidth) for ring all-reduce. The script
prints that model for 8 and 64 ranks with the bytes this method all-reduces per iteration and stated
link speeds; class sharding stops at one class per rank (10 for MNIST), which caps the sharded part.

    python benchmarks/distributed_speed.py --data-root ../shared/data --method dc --ipc 10 --iterations 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from distillset.methods.gradient_matching import loops_for_ipc
from distillset.models import build_model


def timed_run(args, processes: int, threads: int, out: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.pop("WORLD_SIZE", None)
    prefix = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes)] if processes > 1 \
        else [sys.executable]
    command = prefix + ["-m", "distillset", "condense", "--method", args.method, "--dataset", args.dataset, "--ipc", str(args.ipc),
                        "--iterations", str(args.iterations), "--no-progress", "--out", str(out)]
    if args.data_root:
        command += ["--data-root", args.data_root]
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    return json.loads((out / "run.json").read_text())["timings_s"]["seconds_per_iteration"]


def allreduce_profile(method: str, ipc: int, classes: int, shape: tuple[int, int, int]) -> tuple[int, int]:
    """(messages, bytes per message) all-reduced or broadcast per iteration."""
    image_bytes = classes * ipc * shape[0] * shape[1] * shape[2] * 4
    if method in ("dc", "dsa"):
        outer, _ = loops_for_ipc(ipc)
        params = sum(p.numel() for p in build_model("convnet", shape, classes).parameters()) * 4
        # per outer step: one image-gradient all-reduce; between outer steps: one parameter broadcast
        return 2 * outer - 1, (outer * image_bytes + (outer - 1) * params) // (2 * outer - 1)
    return 1, image_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--method", default="dc")
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--bandwidth-gbs", type=float, default=100.0, help="all-reduce bus bandwidth assumed for the model (GB/s)")
    parser.add_argument("--latency-us", type=float, default=30.0, help="per-message latency assumed for the model")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="distillset-dist-"))
    try:
        runs = {}
        for processes, threads in ((1, 1), (1, args.cores), (args.cores, 1)):
            runs[processes, threads] = timed_run(args, processes, threads, tmp / f"p{processes}t{threads}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    one, many = runs[1, args.cores], runs[args.cores, 1]
    p = args.cores
    print(f"{time.strftime('%Y-%m-%d')}, {args.method} ipc {args.ipc} on {args.dataset}, {args.iterations} iterations, {p} cores")
    print("| processes x threads | s / iteration | speed-up vs 1 x 1 | vs 1 x {0} |".format(p))
    print("|---|---|---|---|")
    for (procs, threads), seconds in runs.items():
        print(f"| {procs} x {threads} | {seconds:.2f} | {runs[1, 1] / seconds:.2f}x | {one / seconds:.2f}x |")
    # one process with one thread against P processes with one thread each: shard/P + repeated
    single = runs[1, 1]
    shard = (single - many) * p / (p - 1)
    repeated = max(single - shard, 0.0)
    from distillset.data import load_dataset

    data = load_dataset(args.dataset, data_root=args.data_root)
    messages, size = allreduce_profile(args.method, args.ipc, data.num_classes, data.shape)
    print(f"\nmodel: t(P) = {shard:.2f} s / min(P, {data.num_classes}) + {repeated:.2f} s + {messages} x "
          f"({args.latency_us:.0f} us + 2 (P-1)/P x {size / 1e6:.2f} MB / {args.bandwidth_gbs:.0f} GB/s)  "
          f"[shard fraction {shard / single:.2f}]")
    for ranks in (8, 64):
        comm = messages * (args.latency_us * 1e-6 + 2 * (ranks - 1) / ranks * size / (args.bandwidth_gbs * 1e9))
        t = shard / min(ranks, data.num_classes) + repeated + comm
        print(f"  P = {ranks}: {t:.3f} s / iteration on ranks as fast as one of these cores, speed-up {single / t:.2f}x "
              f"(communication {1e3 * comm:.2f} ms)")


if __name__ == "__main__":
    main()
