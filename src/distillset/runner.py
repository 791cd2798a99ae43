"""Running a method into an output directory: DIR/synset.safetensors, DIR/run.json, DIR/grid.png.

The runner owns everything around a method: loading data, the device, timing, writing results
atomically, and recognising a finished run in DIR (same configuration: done, nothing recomputed;
different configuration: refuse rather than overwrite someone's results).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .data import load_dataset, real_data
from .distributed import local_device
from .errors import DistillsetError, unknown_name
from .evaluation import EvalResults, evaluate_synset
from .fileio import atomic_write_json
from .methods import NEEDS_FEATURES, SELECTORS, ipc_for_ratio, make_coreset
from .models import check_model_name
from .synset import SynSet
from .visualize import save_grid

SYNSET_FILE = "synset.safetensors"
RUN_FILE = "run.json"
GRID_FILE = "grid.png"

Log = Callable[[str], None]


def resolve_device(device: str | None) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or None/'auto' (a GPU when there is one)."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise DistillsetError(f"unknown device '{device}'; use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DistillsetError(f"device '{device}' requested but PyTorch sees no CUDA GPU here; use --device cpu")
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise DistillsetError(f"unsupported device '{device}'; use cpu or cuda")
    return resolved


@dataclass
class RunOutcome:
    synset: SynSet
    directory: Path
    resumed: bool
    record: dict


def environment() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}


def finished_run(directory: Path, config: dict) -> dict | None:
    """The record of a completed run of this configuration in ``directory``, if there is one."""
    record_path = directory / RUN_FILE
    if not (record_path.is_file() and (directory / SYNSET_FILE).is_file()):
        return None
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("status") != "complete":
        return None
    if record.get("config") != config:
        raise DistillsetError(
            f"{directory} already holds a finished run with a different configuration ({record.get('config')}); "
            "choose another --out or delete that directory"
        )
    return record


def run_coreset(method: str, dataset: str, ipc: int | None, out: str | os.PathLike, seed: int = 0, data_root=None,
                device: str | None = "cpu", download: bool = False, verify: bool = True,
                image_size: tuple[int, int] | None = None, feature_model: str = "convnet", feature_epochs: int = 3,
                ratio: float | None = None, method_options: dict | None = None, log: Log = print) -> RunOutcome:
    """Select a coreset and write it with its record and grid into ``out``.

    herding, kcenter, forgetting and dq first train ``feature_model`` on the real data for
    ``feature_epochs`` (cached, so other ipc values and methods reuse it). ``ratio`` (instead of
    ``ipc``) keeps that fraction of the training set, class-balanced: ipc = round(ratio * N / classes).
    ``method_options``: dq's ``bins``, ``patch_drop`` and ``patch_size``.
    """
    if method not in SELECTORS:
        raise unknown_name("coreset method", method, list(SELECTORS))
    if (ipc is None) == (ratio is None):
        raise DistillsetError("give exactly one of --ipc and --ratio")
    if ratio is not None and not 0 < ratio <= 1:
        raise DistillsetError(f"--ratio must be in (0, 1], got {ratio}")
    method_options = dict(method_options or {})
    if method_options and method != "dq":
        raise DistillsetError(f"options {', '.join(sorted(method_options))} apply to --method dq only")
    check_model_name(feature_model)
    directory = Path(out)
    config = {"command": "coreset", "method": method, "dataset": dataset, "ipc": ipc, "seed": seed,
              "image_size": list(image_size) if image_size else None}
    if ratio is not None:
        config["ratio"] = ratio
    options: dict = dict(method_options)
    if method in NEEDS_FEATURES:
        options.update(feature_model=feature_model, feature_epochs=feature_epochs)
    config.update(options)
    record = finished_run(directory, config)
    if record is not None:
        log(f"{directory} already holds this finished run; nothing to do")
        return RunOutcome(SynSet.load(directory / SYNSET_FILE), directory, True, record)
    torch_device = resolve_device(device)
    t0 = time.perf_counter()
    data = load_dataset(dataset, data_root=data_root, download=download, verify=verify, image_size=image_size)
    real = real_data(data, "train", torch_device)
    if ratio is not None:
        ipc = ipc_for_ratio(ratio, real)
        log(f"--ratio {ratio:g}: {ipc} images per class ({ipc * real.num_classes} of {real.labels.numel()})")
    t1 = time.perf_counter()
    synset = make_coreset(method, real, ipc, seed, config=config, log=log, **options)
    t2 = time.perf_counter()
    return write_run(synset, directory, config, {"load_data": t1 - t0, "method": t2 - t1}, log)


def write_run(synset: SynSet, directory: Path, config: dict, timings: dict, log: Log, metrics: dict | None = None) -> RunOutcome:
    """Write the SynSet, the grid, then run.json last (its 'complete' status marks the run finished)."""
    directory.mkdir(parents=True, exist_ok=True)
    synset.save(directory / SYNSET_FILE)
    save_grid(synset, directory / GRID_FILE)
    record = {"status": "complete", "config": config, "timings_s": timings, "metrics": metrics or {},
              "synset": {"file": SYNSET_FILE, "images": len(synset), "shape": list(synset.shape), "method": synset.method},
              "environment": environment()}
    atomic_write_json(directory / RUN_FILE, record)
    log(f"wrote {directory / SYNSET_FILE} ({len(synset)} images), {directory / GRID_FILE} and {directory / RUN_FILE}")
    return RunOutcome(synset, directory, False, record)


def evaluate_file(path: str | os.PathLike, models: list[str], runs: int = 5, epochs: int | None = None,
                  lr: float | None = None, seed: int = 0, data_root=None, device: str | None = "cpu",
                  download: bool = False, verify: bool = True, strategy: str = "auto", dsa: bool = False,
                  log: Log | None = None) -> EvalResults:
    """Evaluate a SynSet file on the real test split of the dataset it names (``dsa``: augment training)."""
    from .augment import DSA, strategy_for

    synset = SynSet.load(path)
    image_size = tuple(synset.shape[1:]) if synset.dataset.startswith("imagefolder:") else None
    data = load_dataset(synset.dataset, data_root=data_root, download=download, verify=verify, image_size=image_size)
    if data.num_classes != synset.num_classes:
        raise DistillsetError(f"{path} has {synset.num_classes} classes but dataset '{synset.dataset}' has {data.num_classes}")
    return evaluate_synset(synset, data.test_images, data.test_labels, models=models, runs=runs, epochs=epochs,
                           lr=lr, seed=seed, device=resolve_device(local_device(device)), strategy=strategy,
                           augment=DSA(strategy_for(synset.dataset)) if dsa else None, progress=log)
