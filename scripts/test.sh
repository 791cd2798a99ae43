#!/usr/bin/env bash
# The test suite (slow tests excluded; add `-m slow` for those). Sets itself up first.
# Real data: $DISTILLSET_DATA, else ../shared/data beside the repository.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
export DISTILLSET_DATA="${DISTILLSET_DATA:-$(cd .. && pwd)/shared/data}"
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$rc"
