#!/usr/bin/env bash
# The GPU check (issue "Ready for the GPU"): one command, under ~8 minutes on one GPU, run as it is by a lent
# device machine. Writes one summary for BENCHMARKS.md to ${OUT:-runs/gpu-check}/gpu_check.md (plus logs).
#   cp -r ../shared/data/MNIST .data/        # once, here: the data travels in the git-ignored .data/
#   (device) pip install --no-deps -e . && bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/gpu-check}"
mkdir -p "$OUT"
DATA="${DISTILLSET_DATA:-.data}"
PY="${PYTHON:-python}"
SUMMARY="$OUT/gpu_check.md"
export DISTILLSET_CACHE="$OUT/cache"
step() {  # step NAME COMMAND...: run, time, record pass/fail and the log's last line
  local name="$1"; shift
  local start=$(date +%s.%N)
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  local seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  printf '| %s | %s | %.1f | %s |\n' "$name" "$([ $rc -eq 0 ] && echo ok || echo "FAILED ($rc)")" "$seconds" \
    "$(tail -n 1 "$OUT/$name.log" | tr '|' '/' | cut -c1-160)" >> "$SUMMARY"
}
{
  echo "# GPU check, $(date -u +%Y-%m-%d)"
  echo
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/GPU: /'
  $PY -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'cuDNN', torch.backends.cudnn.version())"
  echo
  echo "| step | result | seconds | last line |"
  echo "|---|---|---|---|"
} > "$SUMMARY"
step cuda-tests $PY -m pytest -q -p no:cacheprovider -m cuda tests
step experts $PY -m distillset experts --dataset mnist --experts 2 --epochs 2 --device cuda --data-root "$DATA" --out "$OUT/experts"
step experts-bn $PY -m distillset experts --dataset mnist --model convnet-bn --experts 2 --epochs 1 --parallel 2 --device cuda \
  --data-root "$DATA" --out "$OUT/experts-bn"
for method in dc dsa dm dd; do
  step "condense-$method" $PY -m distillset condense --method "$method" --dataset mnist --ipc 1 --iterations 2 --device cuda \
    --no-progress --data-root "$DATA" --out "$OUT/$method"
done
for method in mtt datm; do
  step "condense-$method" $PY -m distillset condense --method "$method" --dataset mnist --ipc 1 --iterations 2 --device cuda \
    --experts-dir "$OUT/experts" --max-start-epoch 1 --expert-epochs 1 --syn-steps 5 --no-progress --data-root "$DATA" \
    --out "$OUT/$method"
done
step evaluate-dsa $PY -m distillset evaluate "$OUT/dsa/synset.safetensors" --runs 4 --device cuda --json --data-root "$DATA"
step eval-speed $PY benchmarks/eval_speed.py --dataset mnist --ipc 1 --runs 20 --epochs 300 --device cuda --data-root "$DATA"
step dc-speed $PY benchmarks/dc_speed.py --dataset mnist --ipc 1,10 --device cuda --end-to-end --data-root "$DATA"
step determinism $PY scripts/determinism_check.py --data-root "$DATA" --out "$OUT/determinism"
step dsa-syncs $PY scripts/count_syncs.py --data-root "$DATA"
if [ "$(nvidia-smi -L 2>/dev/null | wc -l)" -ge 2 ]; then
  step torchrun-2 torchrun --nproc-per-node 2 -m distillset condense --method dsa --dataset mnist --ipc 1 --iterations 2 \
    --device cuda --no-progress --data-root "$DATA" --out "$OUT/dsa-torchrun"
else
  echo "| torchrun-2 | skipped: one GPU | - | - |" >> "$SUMMARY"
fi
{
  echo
  echo "Speed tables:"
  echo '```'
  tail -n 20 "$OUT/eval-speed.log"
  echo
  tail -n 20 "$OUT/dc-speed.log"
  echo
  tail -n 5 "$OUT/dsa-syncs.log"
  echo
  tail -n 6 "$OUT/determinism.log"
  echo '```'
} >> "$SUMMARY"
cat "$SUMMARY"
