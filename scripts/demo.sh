#!/usr/bin/env bash
# The main job on the embedded default (scikit-learn digits): sets itself up, then runs `distillset demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/distillset demo "$@"
