"""``distillset experiment CONFIG.yaml``: a grid of methods x datasets x ipc x seeds, condensed (or
selected), evaluated, and written as one Markdown table and one CSV.

Every cell is a normal run directory (resumable, recognised when finished), and every evaluated cell
is recorded in OUT/cells.json as soon as it is done (each evaluation run of a cell in OUT/runs.json until
the cell is complete), so an interrupted experiment continues where it stopped. With ``eval.dsa`` "auto"
every set is evaluated as its method declares (its paper's protocol: DSA for DSA, DM, MTT and DATM, the DC
code's augmentation for DC and the coresets; 1000 epochs with an augmentation unless ``eval.epochs`` says
otherwise); "always" trains every set with DSA, "never" with no augmentation.
"""

from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .catalogue import get_method
from .data import load_dataset
from .device import resolve_device
from .driver import run_method
from .errors import DistillsetError
from .evaluation import each_run
from .evaluation.files import model_protocol
from .fileio import atomic_write_bytes, read_yaml_mapping
from .published import published
from .results import ResultsStore
from .runner import Log


@dataclass
class ExperimentConfig:
    name: str
    datasets: list[str]
    methods: list[str]
    ipc: list[int]
    seeds: list[int] = field(default_factory=lambda: [0])
    models: list[str] = field(default_factory=lambda: ["convnet"])
    runs: int = 5
    epochs: int | None = None
    dsa: str = "auto"  # "auto", "always" or "never"
    method_options: dict = field(default_factory=dict)
    data_root: str | None = None
    out: str | None = None


def load_experiment(path: str | os.PathLike) -> ExperimentConfig:
    raw = read_yaml_mapping(path, "experiment")
    evaluation = raw.pop("eval", {}) or {}
    allowed = {"name", "datasets", "methods", "ipc", "seeds", "method_options", "data_root", "out"}
    unknown = sorted(set(raw) - allowed) + sorted(f"eval.{k}" for k in set(evaluation) - {"models", "runs", "epochs", "dsa"})
    if unknown:
        raise DistillsetError(f"experiment {path} has unknown key(s) {', '.join(unknown)}")
    missing = [k for k in ("datasets", "methods", "ipc") if not raw.get(k)]
    if missing:
        raise DistillsetError(f"experiment {path} needs {', '.join(missing)}")
    config = ExperimentConfig(name=str(raw.get("name") or Path(path).stem), datasets=list(raw["datasets"]),
                              methods=list(raw["methods"]), ipc=[int(i) for i in raw["ipc"]],
                              seeds=[int(s) for s in raw.get("seeds", [0])], method_options=dict(raw.get("method_options") or {}),
                              data_root=raw.get("data_root"), out=raw.get("out"), **evaluation)
    for method in config.methods:
        get_method(method, "image")  # an unknown name is refused with the known ones
    if config.dsa not in ("auto", "always", "never"):
        raise DistillsetError(f"experiment {path}: eval.dsa must be auto, always or never")
    return config


def run_experiment(config: ExperimentConfig, out: str | os.PathLike | None = None, device: str | None = "cpu",
                   data_root=None, log: Log = print) -> str:
    """Run every cell not yet recorded, then write OUT/results.md and OUT/results.csv; returns the table."""
    out = Path(out or config.out or Path("runs") / "experiments" / config.name)
    out.mkdir(parents=True, exist_ok=True)
    cell_store = ResultsStore(out / "cells.json")
    cells = cell_store.cells
    progress_store = ResultsStore(out / "runs.json")  # the evaluation runs of cells not finished yet: a cell resumes at its next run
    progress = progress_store.cells
    torch_device = resolve_device(device)
    root = data_root or config.data_root
    for dataset in config.datasets:
        data = load_dataset(dataset, data_root=root)
        for method in config.methods:
            for ipc in config.ipc:
                for seed in config.seeds:
                    key = f"{dataset}/{method}/{ipc}/{seed}"
                    if key in cells:
                        continue
                    start = time.perf_counter()
                    cell_dir = out / "cells" / f"{dataset}-{method}-ipc{ipc}-seed{seed}"
                    spec = get_method(method, "image")
                    options = {**dict(config.method_options.get(method) or {}), spec.size: ipc, "seed": seed}
                    outcome = run_method(method, dataset, cell_dir, options, data_root=root, device=device, progress=False,
                                         log=log)
                    # a cell whose evaluation was cut off keeps the time its set took to make the first time
                    state = progress.setdefault(key, {"runs": {}, "seconds": 0.0, "make_seconds": time.perf_counter() - start})
                    made = state["make_seconds"]
                    # "auto": the evaluation the method declares (its paper's), e.g. DSA for dsa, dm, mtt and datm
                    augment = {"always": "dsa", "never": "none"}.get(config.dsa, "auto")
                    accs, failed, epochs, eval_seconds = evaluate_run_by_run(
                        outcome.synset, data, config, seed, torch_device, spec.evaluation.as_dict(), augment, state, progress_store)
                    augment = state.get("augment", augment)
                    cells[key] = {"dataset": dataset, "method": method, "ipc": ipc, "seed": seed, "make_seconds": made,
                                  "eval_seconds": eval_seconds, "augment": augment, "epochs": epochs, "accs": accs,
                                  "failed": failed}
                    cell_store.save()
                    progress.pop(key, None)
                    progress_store.save()
                    log(f"{key}: " + ", ".join(f"{m} {100 * np.mean(a):.2f}%" for m, a in cells[key]["accs"].items() if a))
    rows = summarise(config, cells)
    table = markdown_table(config, rows)
    atomic_write_bytes(out / "results.md", (table + "\n").encode())
    atomic_write_bytes(out / "results.csv", csv_text(rows).encode())
    return table


def evaluate_run_by_run(synset, data, config: ExperimentConfig, seed: int, device, declared: dict, augment: str, state: dict,
                        progress: ResultsStore) -> tuple[dict, dict, int, float]:
    """Evaluate a cell's set on every model one run at a time, storing each finished run in its ``state``
    within the ``progress`` store (saved after every run): an interrupted evaluation (a cross-architecture cell
    takes the better part of an hour on a CPU) resumes at its next run, and each run trains the network it
    would in one full evaluation. Returns the accuracies and failures per model, the epochs and the
    evaluation seconds (summed over sessions)."""
    for model in config.models:
        done = state["runs"].setdefault(model, {})
        callable_, protocol = model_protocol(declared, data.name, model, augment, config.epochs)
        state.setdefault("augment", protocol["augment"])  # the first model's, for the table
        for run, acc, failure, seconds, epochs in each_run(synset, data.test_images, data.test_labels, model, config.runs,
                                                           skip={int(r) for r in done}, epochs=protocol["epochs"], seed=seed,
                                                           device=device, augment=callable_, batch_size=protocol["batch_size"],
                                                           use_soft_labels=protocol["soft_labels"]):
            done[str(run)] = {"acc": acc} if failure is None else {"failed": failure}
            state["seconds"] += seconds
            state["epochs"] = epochs
            progress.save()
    outcomes = {m: [state["runs"][m][str(r)] for r in range(config.runs)] for m in config.models}
    accs = {m: [o["acc"] for o in runs if "acc" in o] for m, runs in outcomes.items()}
    failed = {m: [o["failed"] for o in runs if "failed" in o] for m, runs in outcomes.items()}
    return accs, {m: f for m, f in failed.items() if f}, state.get("epochs"), state["seconds"]


def summarise(config: ExperimentConfig, cells: dict) -> list[dict]:
    """One row per (dataset, method, ipc, model): accuracies pooled over seeds and runs."""
    rows = []
    for dataset in config.datasets:
        for method in config.methods:
            for ipc in config.ipc:
                keys = [f"{dataset}/{method}/{ipc}/{s}" for s in config.seeds if f"{dataset}/{method}/{ipc}/{s}" in cells]
                for model in config.models:
                    accs = [a for k in keys for a in cells[k]["accs"].get(model, [])]
                    if not keys:
                        continue
                    rows.append({"dataset": dataset, "method": method, "ipc": ipc, "model": model,
                                 "mean": 100 * float(np.mean(accs)) if accs else float("nan"),
                                 "std": 100 * float(np.std(accs)) if accs else float("nan"), "n": len(accs),
                                 "published": published(method, dataset, ipc) if model == "convnet" else None,
                                 "seconds": sum(cells[k]["make_seconds"] + cells[k]["eval_seconds"] for k in keys),
                                 "epochs": cells[keys[0]]["epochs"], "augment": cells[keys[0]]["augment"]})
    return rows


def markdown_table(config: ExperimentConfig, rows: list[dict]) -> str:
    lines = [f"Experiment {config.name}: test accuracy (%) of fresh networks trained on each set, final epoch, "
             f"mean +- std over {len(config.seeds)} set(s) x {config.runs} run(s).", "",
             "| dataset | method | ipc | model | ours | published | n | eval | wall time |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pub = f"{r['published']:.1f}" if r["published"] is not None else "-"
        augment = r["augment"] if isinstance(r["augment"], str) else ("dsa" if r["augment"] else "none")  # older cells: a bool
        evaluation = f"{r['epochs']} ep{'' if augment == 'none' else ' + ' + augment}"
        lines.append(f"| {r['dataset']} | {r['method']} | {r['ipc']} | {r['model']} | {r['mean']:.2f} +- {r['std']:.2f} | {pub} | "
                     f"{r['n']} | {evaluation} | {r['seconds'] / 60:.1f} min |")
    return "\n".join(lines)


def csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["dataset", "method", "ipc", "model", "mean", "std", "n", "published",
                                                "epochs", "augment", "seconds"])
    writer.writeheader()
    for r in rows:
        writer.writerow(r)
    return buffer.getvalue()
