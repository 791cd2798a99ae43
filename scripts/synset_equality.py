"""Behaviour check for refactors: make every registered method's SynSet at a fixed seed, compare two such sets.

    python scripts/synset_equality.py record OUT [--data-root DIR]   # one SynSet per method below OUT
    python scripts/synset_equality.py compare BEFORE AFTER [--tol 1e-6]

``record`` drives only the command line (the contract that outlives any refactor), so the same script
records the sets of an older checkout (run it with that checkout's ``src`` on PYTHONPATH) and of the
current one. ``compare`` reads the files with safetensors alone and prints, per method, the largest absolute
difference of every tensor both files hold; it exits 1 when any exceeds ``--tol`` or a file is missing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

DIGITS_IMAGE = ["--dataset", "digits", "--ipc", "2", "--iterations", "3", "--seed", "3"]
TRAJECTORY = ["--max-start-epoch", "2", "--expert-epochs", "1", "--syn-steps", "3"]
# name -> command-line arguments (after `distillset`); {experts} is the expert folder made first
CASES: dict[str, list[str]] = {
    "dc": ["condense", "--method", "dc", *DIGITS_IMAGE, "--no-compile"],
    "dc-bn": ["condense", "--method", "dc", *DIGITS_IMAGE, "--no-compile", "--model", "convnet-bn"],
    "dsa": ["condense", "--method", "dsa", *DIGITS_IMAGE, "--no-compile"],
    "dm": ["condense", "--method", "dm", *DIGITS_IMAGE],
    "dd": ["condense", "--method", "dd", *DIGITS_IMAGE],
    "mtt": ["condense", "--method", "mtt", *DIGITS_IMAGE, "--experts-dir", "{experts}", *TRAJECTORY],
    "datm": ["condense", "--method", "datm", *DIGITS_IMAGE, "--experts-dir", "{experts}", *TRAJECTORY],
    "random": ["coreset", "--method", "random", "--dataset", "digits", "--ipc", "3", "--seed", "3"],
    "herding": ["coreset", "--method", "herding", "--dataset", "digits", "--ipc", "3", "--seed", "3", "--feature-epochs", "1"],
    "kcenter": ["coreset", "--method", "kcenter", "--dataset", "digits", "--ipc", "3", "--seed", "3", "--feature-epochs", "1"],
    "forgetting": ["coreset", "--method", "forgetting", "--dataset", "digits", "--ipc", "3", "--seed", "3", "--feature-epochs", "1"],
    "dq": ["coreset", "--method", "dq", "--dataset", "digits", "--ipc", "3", "--seed", "3", "--feature-epochs", "1",
           "--patch-drop", "0.25"],
    "gcond": ["condense", "--method", "gcond", "--dataset", "cora", "--reduction", "0.25", "--epochs", "2", "--seed", "3"],
    "gcond-x": ["condense", "--method", "gcond-x", "--dataset", "cora", "--reduction", "0.25", "--epochs", "2", "--seed", "3"],
    "sgdd": ["condense", "--method", "sgdd", "--dataset", "cora", "--reduction", "0.25", "--epochs", "2", "--seed", "3"],
    "graph-random": ["coreset", "--method", "random", "--dataset", "cora", "--reduction", "0.25", "--seed", "3"],
    "graph-herding": ["coreset", "--method", "herding", "--dataset", "cora", "--reduction", "0.25", "--seed", "3"],
    "graph-kcenter": ["coreset", "--method", "kcenter", "--dataset", "cora", "--reduction", "0.25", "--seed", "3"],
}
EXPERTS = ["experts", "--dataset", "digits", "--experts", "2", "--epochs", "3", "--seed", "3"]


def _distillset(args: list[str], env: dict) -> None:
    result = subprocess.run([sys.executable, "-m", "distillset", *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"distillset {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-2000:]}")


def record(out: Path, data_root: str, only: list[str]) -> None:
    env = {**os.environ, "DISTILLSET_CACHE": str(out / "cache"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    experts = out / "experts"
    if not (experts / "index.json").is_file():
        _distillset([*EXPERTS, "--out", str(experts)], env)
    for name, args in CASES.items():
        if only and name not in only:
            continue
        target = out / name
        if (target / "synset.safetensors").is_file():
            continue
        args = [a.replace("{experts}", str(experts)) for a in args]
        _distillset([*args, "--data-root", data_root, "--out", str(target)], env)
        print(f"recorded {name}", flush=True)


def compare(before: Path, after: Path, tol: float) -> int:
    from safetensors.torch import load_file

    worst_overall, failed = 0.0, False
    print(f"| method | tensors | largest abs difference |\n|---|---|---|")
    for name in CASES:
        a, b = before / name / "synset.safetensors", after / name / "synset.safetensors"
        if not (a.is_file() and b.is_file()):
            print(f"| {name} | missing in {'before' if not a.is_file() else 'after'} | - |")
            failed = True
            continue
        ta, tb = load_file(a), load_file(b)
        common = sorted(set(ta) & set(tb))
        if set(ta) != set(tb):
            print(f"| {name} | different tensor names: {sorted(set(ta) ^ set(tb))} | - |")
            failed = True
        worst = 0.0
        for key in common:
            if ta[key].shape != tb[key].shape:
                worst = float("inf")
                continue
            if ta[key].numel():
                worst = max(worst, float((ta[key].double() - tb[key].double()).abs().max()))
        worst_overall = max(worst_overall, worst)
        failed |= worst > tol
        print(f"| {name} | {', '.join(common)} | {worst:.3g} |")
    print(f"largest difference {worst_overall:.3g} (tolerance {tol:g}): {'FAIL' if failed else 'equal'}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("record")
    p.add_argument("out")
    p.add_argument("--data-root", default=os.environ.get("DISTILLSET_DATA", "../shared/data"))
    p.add_argument("--only", default="", help="comma-separated case names")
    p = sub.add_parser("compare")
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--tol", type=float, default=1e-6)
    args = parser.parse_args()
    if args.command == "record":
        record(Path(args.out), args.data_root, [n for n in args.only.split(",") if n])
        return 0
    return compare(Path(args.before), Path(args.after), args.tol)


if __name__ == "__main__":
    sys.exit(main())
