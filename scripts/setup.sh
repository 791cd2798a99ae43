#!/usr/bin/env bash
# Create .venv (once) and install distillset with its test extras into it.
# torch is installed first, pinned, when missing: an unpinned torch on a CPU machine would pull
# several GB of CUDA packages. Override the pin with DISTILLSET_TORCH (e.g. "torch==2.5.1").
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
stamp=.venv/.distillset-installed
want="$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VPY" -c "import distillset, torch" 2>/dev/null; then
  exit 0
fi
"$VPY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! "$VPY" -c "import torch" 2>/dev/null; then
  echo "setup: installing ${DISTILLSET_TORCH:-torch==2.13.0}" >&2
  "$VPY" -m pip install -q "${DISTILLSET_TORCH:-torch==2.13.0}"
fi
echo "setup: installing distillset and its dependencies into .venv" >&2
"$VPY" -m pip install -q -e ".[test]"
echo "$want" > "$stamp"
