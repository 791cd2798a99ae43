"""Robust scores (`distillset score`) of several sets, one stored result per set (issue 37's table).

    python benchmarks/score_table.py --sets dc=PATH,dsa=PATH --teacher POOL --runs 5 --data-root ../shared/data

Each set is scored with the same protocol, seeds and budget; the whole-data reference and the random
baselines are shared between sets of the same dataset and label budget. A set already in --results with the
same settings is not scored again, and every network of a set's arms is stored in --cache as it ends (kept in the
repository), so a cut-off score resumes at its next network, in this session or the next.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import add_results_arguments, open_results

from distillset.driver import declared_evaluation
from distillset.evaluation.score import Scorer, score_table
from distillset.results import ResultsStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="", help="comma-separated name=path pairs")
    parser.add_argument("--teacher", help="pool for the soft arms (knowledge distillation)")
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--epochs", type=int, help="override every arm's budget (default: each set's declared one)")
    parser.add_argument("--full-epochs", type=int, default=5)
    parser.add_argument("--full-runs", type=int, default=1)
    parser.add_argument("--data-root")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache", default="benchmarks/results/score-cache",
                        help="where each network's accuracy and the whole-data reference are stored")
    add_results_arguments(parser, "benchmarks/results/score_table.json")
    args = parser.parse_args()
    path, results = open_results(args)
    settings = {"teacher": args.teacher, "model": args.model, "runs": args.runs, "epochs": args.epochs,
                "full_epochs": args.full_epochs, "full_runs": args.full_runs}
    if not args.table:
        scorer = Scorer(model=args.model, runs=args.runs, data_root=args.data_root, device=args.device, teacher=args.teacher,
                        full_epochs=args.full_epochs, full_runs=args.full_runs, epochs=args.epochs, log=print,
                        cache=Path(args.cache))
        for pair in [p for p in args.sets.split(",") if p]:
            name, _, set_path = pair.partition("=")
            if name in results and results[name].get("settings") == settings:
                continue
            score = scorer.score(set_path, declared_evaluation(set_path))  # older files: their method's declaration
            results[name] = {**score, "set": name, "path": set_path, "settings": settings}
            ResultsStore(path, results).save()
            print(f"{name}: hard {score['hard']:.2f}, soft {score['soft']}, random {score['random_hard']:.2f}", flush=True)
    print(score_table(list(results.values())))


if __name__ == "__main__":
    main()
