"""Helpers shared by the benchmark scripts: the device's measured matmul rate, FLOP counting, results files."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from distillset import DistillsetError, environment
from distillset.evaluation import each_run
from distillset.published import published, published_source, published_std
from distillset.results import ResultsStore, merge_cells


def matmul_gflops(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """fp32 matmul rate measured now, on this device: the denominator of every 'fraction of floor'."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOPs of one forward + backward pass on (x, y), counted by PyTorch's FlopCounterMode."""
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def forward_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def add_results_arguments(parser, default: str) -> None:
    """--results (the JSON file every cell or run is stored in), --merge and --table: the same in every table script."""
    parser.add_argument("--results", default=default)
    parser.add_argument("--merge", default="", help="comma-separated results files (of parallel runs) to fold into --results")
    parser.add_argument("--table", action="store_true", help="only print the table of --results (after --merge)")


def open_results(args, may_differ: tuple[str, ...] = ()) -> tuple[Path, dict]:
    """The results file named by --results and its cells, with the --merge files folded in (and written back):
    the library's one results store (distillset.results)."""
    store = ResultsStore(args.results)
    if args.merge:
        store.merge_files([f for f in args.merge.split(",") if f], may_differ)
    return store.path, store.cells


def merge_results(results: dict, files: list[Path], may_differ: tuple[str, ...] = ()) -> dict:
    """Fold the cells of other results files (of runs made in parallel) into a copy of ``results``; the same cell
    measured twice with different values stops the script (keys ending in ``may_differ`` keep the first value)."""
    try:
        merged = dict(results)
        for file in files:
            merge_cells(merged, ResultsStore(file).cells, str(file), may_differ)
        return merged
    except DistillsetError as exc:
        raise SystemExit(str(exc)) from None


def model_columns(cells: list[dict | None]) -> list[str]:
    """Table cells for one row of per-model results (first model first): "mean +- std (runs)" each (a single
    run has no std, so none is printed), then the mean over the models after the first, the
    cross-architecture figure ("-" until all of them are measured)."""
    row = [_cell_text(c) if c else "-" for c in cells]
    if len(cells) > 1:
        means = [c["mean"] for c in cells[1:] if c]
        row.append(f"{100 * np.mean(means):.2f}" if len(means) == len(cells) - 1 else "-")
    return row


def _cell_text(cell: dict) -> str:
    runs = len(cell["accs"])
    spread = f" +- {100 * cell['std']:.2f}" if runs > 1 else ""
    return f"{100 * cell['mean']:.2f}{spread} ({runs})"


def model_header(models: list[str]) -> str:
    return " | ".join(models) + (f" | mean of {', '.join(models[1:])}" if len(models) > 1 else "")


def stored_runs(results: dict, key: str, epochs: int) -> dict[int, float]:
    """Run index -> accuracy of cell ``key`` as measured with ``epochs`` (empty if another schedule or none)."""
    cell = results.get(key)
    if cell is None or cell["epochs"] != epochs:
        return {}
    return dict(zip(cell.get("run_indices", range(len(cell["accs"]))), cell["accs"]))


def measure_runs(results: dict, key: str, path: Path, synset, data, runs: int, epochs: int, device, model: str = "convnet",
                 extra: dict | None = None) -> dict:
    """Evaluate the runs of cell ``key`` that ``results`` lacks, storing each one in ``path`` as soon as it ends.

    A cell measured with another number of epochs is measured again. Each run trains the same network it
    would in a full ``evaluate_synset`` (``run_indices``), so a cell cut off at the end of a session
    resumes at its next run and loses at most one. Returns the cell: mean, std, accs (by run index),
    run_indices, epochs, seconds, date, environment, device, and ``extra``.
    """
    stored = stored_runs(results, key, epochs)
    seconds = results[key]["seconds"] if stored else 0.0
    for run, acc, failure, spent, _ in each_run(synset, data.test_images, data.test_labels, model, runs, skip=stored,
                                                epochs=epochs, seed=0, device=device):
        if failure is not None:
            raise SystemExit(f"{key}: {failure}")
        stored[run] = acc
        seconds += spent
        ordered = [stored[r] for r in sorted(stored)]
        results[key] = {"mean": float(np.mean(ordered)), "std": float(np.std(ordered)), "accs": ordered, "run_indices": sorted(stored),
                        "epochs": epochs, "seconds": seconds, "date": time.strftime("%Y-%m-%d"), "environment": environment(),
                        "device": str(device), **(extra or {})}
        ResultsStore(path, results).save()
    return results[key]


def published_columns(method: str, dataset: str, size: float) -> tuple[float | None, float | None, str, str]:
    """A ledger row's published number: the mean and std (None where absent), the table's text for them
    ("mean +- std", the mean alone, or "-") and the source ("-" where none is recorded)."""
    pub, pub_std = published(method, dataset, size), published_std(method, dataset, size)
    text = "-" if pub is None else f"{pub:.1f}" + (f" +- {pub_std:.1f}" if pub_std is not None else "")
    return pub, pub_std, text, published_source(method, dataset, size) or "-"
