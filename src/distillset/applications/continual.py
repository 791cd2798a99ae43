"""Class-incremental continual learning with a condensed memory (the DC paper's first application).

The classes arrive in ``steps`` groups, in an order drawn from the seed (``orders`` different orders).
At each step the memory of the NEW classes is built by the chosen method from that step's data only
(a coreset selection or a condensation over the step's classes), added to the memory of the earlier
steps, and a freshly initialised network is trained on the whole memory and tested on the real test
images of every class seen so far. A memory method is better when its few images per class carry
more of each class: the paper reports condensed memories ahead of herding and random ones.

Every (method, order, step) cell is stored as soon as it is measured (memories as SynSet files,
accuracies in results.json, all written atomically), so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..augment import strategy_for
from ..data.real import RealData
from ..catalogue import get_method
from ..device import resolve_device
from ..driver import run_in_memory
from ..errors import DistillsetError
from ..fileio import atomic_write_bytes, atomic_write_json
from ..results import merge_cells
from ..seeding import make_generator
from ..synset import SynSet
from ..evaluation import evaluate_synset

COMPARED = ("random", "herding", "dc", "dsa", "dm")


@dataclass
class ContinualConfig:
    dataset: str
    steps: int = 5
    ipc: int = 10
    memories: list[str] = field(default_factory=lambda: ["random", "herding", "dc"])
    orders: int = 3
    model: str = "convnet"
    epochs: int = 300  # training of the fresh network at every step
    runs: int = 1  # fresh networks per step (their mean is the order's value)
    iterations: int | dict | None = None  # condensation iterations per step: one number, {method: n}, or None (defaults)
    feature_epochs: int = 3  # herding's feature network, trained on the step's data
    init: str | None = None  # condensed memories start from "real" images or "noise" (None: each method's default)
    seed: int = 0


def class_orders(num_classes: int, orders: int, seed: int) -> list[list[int]]:
    """Seeded class orders; order 0 is the natural one, as in the usual fixed-order protocol."""
    out = [list(range(num_classes))]
    for o in range(1, orders):
        out.append(torch.randperm(num_classes, generator=make_generator(seed, "continual", "order", o)).tolist())
    return out


def split_steps(order: list[int], steps: int) -> list[list[int]]:
    if not 1 <= steps <= len(order):
        raise DistillsetError(f"--steps must be between 1 and the number of classes ({len(order)}), got {steps}")
    return [chunk.tolist() for chunk in np.array_split(np.array(order), steps)]


def build_memory(method: str, real: RealData, classes: list[int], config: ContinualConfig, seed: int) -> SynSet:
    """The memory of ``classes`` made from their training images only, by any registered image method; labels in
    the global numbering."""
    spec = get_method(method, "image")
    fields = spec.config_class.__dataclass_fields__
    options: dict = {"ipc": config.ipc, "seed": seed}
    if "model" in fields:
        options["model"] = config.model
    if "feature_model" in fields:
        options.update(feature_model=config.model, feature_epochs=config.feature_epochs)
    if "dsa_strategy" in fields and fields["dsa"].default:
        options["dsa_strategy"] = strategy_for(real.name)  # the step's subset keeps the dataset's transforms
    if "compile" in fields:
        options["compile"] = False  # a fresh compile per step would cost more than it saves on small steps
    if config.init is not None and "init" in fields:
        # a short CPU budget cannot take DC from noise to a useful memory; from real images a short run
        # refines a random subset, so the comparison with random and herding memories stays informative
        options["init"] = config.init
    iterations = config.iterations.get(method) if isinstance(config.iterations, dict) else config.iterations
    if iterations is not None and "iterations" in fields:
        options["iterations"] = iterations
    synset = run_in_memory(spec, real.subset_classes(classes), options)
    labels = torch.as_tensor(classes)[synset.labels.cpu()]
    return SynSet.from_real(real, synset.images, labels, method=method, ipc=config.ipc, config={"classes": classes})


def run_continual(config: ContinualConfig, out: str | os.PathLike, data_root=None, device: str | None = "cpu",
                  log=print, only_orders: list[int] | None = None) -> dict:
    """Run (or resume) the protocol into ``out``; returns the results mapping and writes the table and plot.

    ``only_orders`` restricts the run to some of the ``config.orders`` class orders. Each order is one sequential
    chain of steps, so separate processes (one per core, each with its own ``out``) can take different orders of
    the same protocol; ``merge_runs`` joins their folders. The seeds depend on the order's index only, so the
    cells are the ones a single run over every order would measure.
    """
    from ..data import load_dataset, real_data

    if config.ipc < 1 or config.orders < 1 or config.runs < 1 or config.epochs < 1:
        raise DistillsetError("--ipc, --orders, --runs and --epochs must be at least 1")
    if config.init not in (None, "real", "noise"):
        raise DistillsetError(f"unknown --init '{config.init}'; use real or noise")
    torch_device = resolve_device(device)
    data = load_dataset(config.dataset, data_root=data_root)
    real = real_data(data, "train", torch_device)
    real.check_ipc(config.ipc)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    results = combine(results, fresh_results(config), f"{out} holds a continual-learning run")
    cells = results["cells"]
    test_labels = np.asarray(data.test_labels)
    orders = class_orders(data.num_classes, config.orders, config.seed)
    chosen = check_order_indices(only_orders, config.orders)
    for method in config.memories:
        for o in chosen:
            order = orders[o]
            memory: list[SynSet] = []
            seen: list[int] = []
            for s, classes in enumerate(split_steps(order, config.steps)):
                seen += classes
                memory_file = out / "memories" / f"{method}-order{o}-step{s}.safetensors"
                if memory_file.is_file():
                    part = SynSet.load(memory_file)
                else:
                    start = time.perf_counter()
                    part = build_memory(method, real, classes, config, seed=config.seed + 1000 * o + s)
                    part.config["seconds"] = time.perf_counter() - start
                    memory_file.parent.mkdir(parents=True, exist_ok=True)
                    part.save(memory_file)
                memory.append(part)
                key = f"{method}/order{o}/step{s}"
                if key in cells:
                    continue
                start = time.perf_counter()
                whole = SynSet.from_real(real, torch.cat([m.images for m in memory]), torch.cat([m.labels for m in memory]),
                                         method=method, ipc=config.ipc)
                mask = np.isin(test_labels, seen)
                evaluation = evaluate_synset(whole, data.test_images[mask], test_labels[mask], models=[config.model],
                                             runs=config.runs, epochs=config.epochs, seed=config.seed + o, device=torch_device)
                accs = evaluation.results[config.model].accs
                if not accs:
                    raise DistillsetError(f"every network trained on the {method} memory diverged (order {o}, step {s + 1})")
                cells[key] = {"accs": accs, "classes_seen": list(seen), "memory_images": len(whole),
                              "memory_seconds": part.config.get("seconds"), "eval_seconds": time.perf_counter() - start}
                atomic_write_json(results_path, results)
                log(f"{method}, order {o}, step {s + 1}/{config.steps} ({len(seen)} classes, {len(whole)} images): "
                    f"{100 * float(np.mean(accs)):.2f}%")
    write_report(results, out)
    return results


def check_order_indices(only_orders: list[int] | None, orders: int) -> list[int]:
    """The order indices to run, ascending: all of them by default, else the given ones after checking they exist."""
    if only_orders is None:
        return list(range(orders))
    if not only_orders or any(not 0 <= o < orders for o in only_orders):
        raise DistillsetError(f"--only-orders takes order indices from 0 to {orders - 1} (--orders {orders}), "
                              f"got {only_orders}")
    return sorted(set(only_orders))


def fresh_results(config: ContinualConfig) -> dict:
    """An empty results mapping for ``config``: its identity, the iterations of each of its memory methods."""
    per_method = config.iterations if isinstance(config.iterations, dict) else {m: config.iterations for m in config.memories}
    iterations = {m: per_method.get(m) for m in config.memories}
    identity = {k: v for k, v in asdict(config).items() if k not in ("memories", "iterations")}
    return {"config": identity | {"memories": list(config.memories)}, "iterations": iterations, "cells": {}}


def combine(results: dict, other: dict, what: str) -> dict:
    """``results`` and ``other`` as one mapping: the same protocol (everything but the memory methods), the same
    iterations for a method both ran, and no cell measured differently; so methods run in separate processes
    or sessions (one per core) add up to one table, and a rerun with changed settings is refused, not mixed in."""
    if not results:
        return json.loads(json.dumps(_upgraded(other)))
    results, other = _upgraded(results), _upgraded(other)
    mine, theirs = results["config"], other["config"]
    protocol = [k for k in set(mine) | set(theirs) if k != "memories"]
    if any(mine.get(k) != theirs.get(k) for k in protocol):
        raise DistillsetError(f"{what} with another configuration ({mine}); choose another --out")
    iterations = dict(results.get("iterations", {}))
    for method, value in other.get("iterations", {}).items():
        if method in iterations and iterations[method] != value:
            raise DistillsetError(f"{what} where {method} used {iterations[method]} iterations per step, not {value}; "
                                  "choose another --out")
        iterations[method] = value
    cells = merge_cells(dict(results["cells"]), other["cells"], what)
    memories = list(dict.fromkeys(mine["memories"] + theirs["memories"]))
    return {"config": mine | {"memories": memories}, "iterations": iterations, "cells": cells}


def _upgraded(results: dict) -> dict:
    """Results written before iterations were kept per method (one value in the config) in today's layout."""
    if "iterations" not in results["config"]:
        return results
    config = dict(results["config"])
    value = config.pop("iterations")
    return results | {"config": config, "iterations": {m: value.get(m) if isinstance(value, dict) else value
                                                     for m in config["memories"]}}


def merge_runs(folders: list[str | os.PathLike], out: str | os.PathLike) -> dict:
    """One table (results.json, results.md, continual.png in ``out``) from the folders of runs made in parallel."""
    merged: dict = {}
    for folder in folders:
        path = Path(folder) / "results.json"
        if not path.is_file():
            raise DistillsetError(f"{folder} holds no continual-learning results ({path} is missing)")
        merged = combine(merged, json.loads(path.read_text()), f"{folder} is a continual-learning run")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", merged)
    write_report(merged, out)
    return merged


def write_report(results: dict, out: Path) -> None:
    atomic_write_bytes(out / "results.md", (markdown_table(results) + "\n").encode())  # the table as the CLI prints it
    plot(results, out / "continual.png")


def step_summary(results: dict, method: str, step: int) -> tuple[float, float, int]:
    """(mean, std, orders) of the per-order mean accuracies at ``step``."""
    cfg = results["config"]
    per_order = [float(np.mean(results["cells"][key]["accs"])) for o in range(cfg["orders"])
                 if (key := f"{method}/order{o}/step{step}") in results["cells"]]
    return (float(np.mean(per_order)), float(np.std(per_order)), len(per_order)) if per_order else (float("nan"), 0.0, 0)


def step_cell_text(mean: float, std: float, n: int, orders: int) -> str:
    """One table cell. A partly measured step says on how many orders it rests: while a long benchmark
    is still running, a mean over one order must not read as a mean over all of them, and one order
    has no spread to print (its std is unknown, not zero)."""
    if not n:
        return "-"
    text = f"{100 * mean:.2f}" + (f" +- {100 * std:.2f}" if n > 1 else "")
    return text + (f" ({n} of {orders} orders)" if n < orders else "")


def markdown_table(results: dict) -> str:
    cfg = results["config"]
    header = (f"Class-incremental {cfg['dataset']}: {cfg['steps']} steps, {cfg['ipc']} images per class in memory, "
              f"{cfg['model']} x {cfg['epochs']} epochs per step, mean +- std over {cfg['orders']} class orders (%)")
    lines = [header, "", "| memory | " + " | ".join(f"step {s + 1}" for s in range(cfg["steps"])) + " |",
             "|---|" + "---|" * cfg["steps"]]
    for method in cfg["memories"]:
        row = []
        for s in range(cfg["steps"]):
            row.append(step_cell_text(*step_summary(results, method, s), orders=cfg["orders"]))
        lines.append(f"| {method} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = results["config"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    steps = np.arange(1, cfg["steps"] + 1)
    for method in cfg["memories"]:
        stats = [step_summary(results, method, s) for s in range(cfg["steps"])]
        means = np.array([100 * m for m, _, _ in stats])
        stds = np.array([100 * sd for _, sd, _ in stats])
        ax.errorbar(steps, means, yerr=stds, marker="o", capsize=3, label=method)
    ax.set_xlabel("step (classes arrive in groups)")
    ax.set_ylabel("test accuracy on seen classes (%)")
    ax.set_title(f"{cfg['dataset']}, {cfg['ipc']} images/class")
    ax.set_xticks(steps)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
