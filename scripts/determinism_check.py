"""Does a GPU run repeat bit for bit? DSA on MNIST, ipc 1, 3 iterations, run twice with and twice without
``--deterministic``; prints the largest image difference of each pair. Part of scripts/gpu_check.sh.

    python scripts/determinism_check.py --data-root .data --out runs/determinism
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from distillset.synset import SynSet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default="runs/determinism")
    args = parser.parse_args()
    out = Path(args.out)
    base = [sys.executable, "-m", "distillset", "condense", "--method", "dsa", "--dataset", "mnist", "--ipc", "1",
            "--iterations", "3", "--no-progress", "--no-compile", "--device", args.device]
    if args.data_root:
        base += ["--data-root", args.data_root]
    print("| flag | max abs difference between two runs | bitwise equal |")
    print("|---|---|---|")
    for flag in ([], ["--deterministic"]):
        sets = []
        for repeat in (1, 2):  # separate processes: nothing is shared but the code
            folder = out / f"{'det' if flag else 'default'}-{repeat}"
            subprocess.run(base + flag + ["--out", str(folder)], check=True, capture_output=True)
            sets.append(SynSet.load(folder / "synset.safetensors").images)
        difference = float((sets[0] - sets[1]).abs().max())
        print(f"| {' '.join(flag) or '(none)'} | {difference:.3g} | {difference == 0} |")


if __name__ == "__main__":
    main()
