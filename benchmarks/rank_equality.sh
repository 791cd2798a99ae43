#!/usr/bin/env bash
# Issue 38 item 10: a P-process torchrun against the 1-process run, and what the thread count does.
# DC on digits (the demo: ConvNet depth 2), ipc 1, 100 iterations, seed 5, eager: (a) 1 process x 1 thread, (b) torchrun 2 processes x 1
# thread, (c) 1 process x 2 threads; the largest image difference to (a), then 10 fresh ConvNets on each set.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/rank-equality}
ITERS=${ITERS:-100}
A=(condense --method dc --dataset digits --ipc 1 --model convnet-d2 --iterations "$ITERS" --seed 5 --no-compile --no-progress)
OMP_NUM_THREADS=1 $PY -m distillset "${A[@]}" --threads 1 --out "$OUT/one-thread" >/dev/null
OMP_NUM_THREADS=1 $PY -m torch.distributed.run --standalone --nproc-per-node 2 -m distillset "${A[@]}" --threads 1 \
    --out "$OUT/torchrun-2" >/dev/null 2>&1
$PY -m distillset "${A[@]}" --threads 2 --out "$OUT/two-threads" >/dev/null
for d in one-thread torchrun-2 two-threads; do
  OMP_NUM_THREADS=1 $PY -m distillset evaluate "$OUT/$d/synset.safetensors" --models convnet-d2 --runs 10 --json > "$OUT/$d.json"
done
$PY - "$OUT" <<'PY'
import json, sys
from distillset.synset import SynSet
out = sys.argv[1]
ref = SynSet.load(f"{out}/one-thread/synset.safetensors").images
print("| run | threads per process | max abs image difference to 1 process x 1 thread | ConvNet-D2 accuracy (10 nets, 300 epochs) |")
print("|---|---|---|---|")
for name, threads in (("one-thread", 1), ("torchrun-2", 1), ("two-threads", 2)):
    images = SynSet.load(f"{out}/{name}/synset.safetensors").images
    r = json.load(open(f"{out}/{name}.json"))["results"]["convnet-d2"]
    print(f"| {name} | {threads} | {float((images - ref).abs().max()):.3g} (scale {float(ref.abs().max()):.3g}) | "
          f"{100 * r['mean']:.2f} +- {100 * r['std']:.2f} |")
PY
