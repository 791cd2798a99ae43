#!/usr/bin/env bash
# Re-measure the FashionMNIST ipc-1 trajectory table with each method's published evaluation (issue 34).
set -e
cd /work/main
# DISTILLSET_SRC: run from a frozen checkout (a git worktree) so that edits to src/ cannot reach a long run
export PYTHONPATH=${DISTILLSET_SRC:-/work/main/src}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
PY=.venv/bin/python
E=benchmarks/results/trajectory-experts
$PY -m distillset experts --dataset fashion-mnist --experts 2 --epochs 3 --data-root ../shared/data --out $E/fashion-mnist-sgd
$PY -m distillset experts --dataset fashion-mnist --experts 2 --epochs 3 --optimizer gsam --data-root ../shared/data --out $E/fashion-mnist-gsam
$PY benchmarks/trajectory_cpu.py --dataset fashion-mnist --ipc 1 --methods dc,dsa,dd,mtt,datm --experts-dir $E/fashion-mnist-sgd \
    --datm-experts-dir $E/fashion-mnist-gsam --data-root ../shared/data --out runs/bench-trajectory
