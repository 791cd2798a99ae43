"""One continual-learning table from runs made apart (one memory method per process or session).

`distillset continual` keeps adding methods to one output folder; to use both cores, run methods in
separate folders and fold them together here. Every folder must hold the same protocol (dataset,
steps, ipc, orders, model, epochs, runs, seed); a method run in two folders must have used the same
iterations and measured the same cells.

    python benchmarks/continual_table.py --merge runs/cl-mnist-a,runs/cl-mnist-b --out runs/cl-mnist
"""

from __future__ import annotations

import argparse

from distillset.errors import DistillsetError
from distillset.applications.continual import markdown_table, merge_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--merge", required=True, help="comma-separated `distillset continual` output folders")
    parser.add_argument("--out", required=True, help="folder for the merged results.json, results.md and continual.png")
    args = parser.parse_args()
    try:
        results = merge_runs([f for f in args.merge.split(",") if f], args.out)
    except DistillsetError as exc:
        raise SystemExit(str(exc)) from None
    print(markdown_table(results))


if __name__ == "__main__":
    main()
