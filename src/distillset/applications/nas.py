"""Neural architecture search on a condensed proxy set (the DC paper's second application).

A search space of ConvNet variants is trained twice: briefly on the whole training data (the
reference ranking, cached in the output folder and shared by every proxy) and on a proxy set (a
SynSet file, a random subset of the same size, or early-stopped whole-data training). Both rank the
candidates by accuracy on a held-out validation split of the training set (10% per class, seeded;
never the test set). Reported per proxy: Spearman's rank correlation with the reference, the
candidate the proxy picks and its accuracy when retrained on the whole training data and tested on
the test split, and the time and memory the proxy search used.

A condensed set learned from the full training split has seen the validation images; state that when
comparing (the benchmark learns its proxies from the search split only, see BENCHMARKS.md).
Candidates differ in architecture, so they cannot share one vmapped network; they are trained one
after another, each with its own seeded initialisation and shuffles.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.real import RealData
from ..errors import DistillsetError, unknown_name
from ..fileio import atomic_write_json
from ..models import build_model
from ..seeding import make_generator
from ..synset import SynSet
from ..training import TrainConfig, TrainingDiverged, test_accuracy, train_model


def _names(depths, widths, norms, acts, pools) -> list[str]:
    return [f"convnet-d{d}-w{w}-{n}-{a}-{p}" for d, w, n, a, p in itertools.product(depths, widths, norms, acts, pools)]


SPACES = {
    # 24 members: depth x width x normalisation x pooling, ReLU
    "small": lambda: _names((2, 3, 4), (32, 64), ("in", "bn"), ("relu",), ("avgpool", "maxpool")),
    # 96 members: adds activation and a wider width
    "medium": lambda: _names((2, 3, 4), (32, 64), ("in", "bn"), ("relu", "sigmoid", "leakyrelu", "swish"), ("avgpool", "maxpool")),
    # the DC paper's 720: depth 1-4, width 32-256, 5 norms, 3 activations, 3 poolings
    "paper": lambda: _names((1, 2, 3, 4), (32, 64, 128, 256), ("nonorm", "bn", "ln", "in", "gn"), ("sigmoid", "relu", "leakyrelu"),
                            ("nopool", "maxpool", "avgpool")),
}


def search_space(name: str) -> list[str]:
    if name not in SPACES:
        raise unknown_name("search space", name, list(SPACES))
    return SPACES[name]()


@dataclass
class NASConfig:
    dataset: str
    space: str = "small"
    proxy: str = "random"  # a SynSet path, "random" (a subset of --ipc per class) or "whole"
    ipc: int = 10  # size of the random proxy
    proxy_epochs: float = 300  # epochs on the proxy; for "whole" a fraction is early stopping
    reference_epochs: float = 2  # epochs of the whole-data reference
    final_epochs: float = 2  # retraining of the chosen candidate on the whole data
    validation_fraction: float = 0.1
    batch_size: int = 256
    lr: float = 0.01
    seed: int = 0


def validation_split(real: RealData, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(search indices, validation indices): ``fraction`` of every class held out, seeded."""
    if not 0 < fraction < 1:
        raise DistillsetError(f"the validation fraction must be in (0, 1), got {fraction}")
    generator = make_generator(seed, "nas", "validation")
    search, held = [], []
    for c in range(real.num_classes):
        pool = real.class_indices[c]
        perm = pool[torch.randperm(pool.numel(), generator=generator).to(pool.device)]
        cut = max(1, int(round(fraction * pool.numel())))
        held.append(perm[:cut])
        search.append(perm[cut:])
    return torch.cat(search), torch.cat(held)


def search_data(real: RealData, fraction: float = 0.1, seed: int = 0) -> RealData:
    """The training images a NAS run with this validation split searches on (its validation images left
    out): what a proxy should be condensed from so that it has never seen the images that rank it."""
    return real.subset(validation_split(real, fraction, seed)[0])


def train_steps(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, epochs: float, batch_size: int, lr: float,
                generator: torch.Generator) -> None:
    """SGD (momentum 0.9, wd 5e-4, lr x0.1 at half) for ``epochs`` passes; a fractional epoch stops early."""
    per_epoch = -(-images.shape[0] // batch_size)
    train_model(model, images, labels, TrainConfig(lr=lr, batch_size=batch_size), generator,
                max_steps=max(1, int(round(epochs * per_epoch))))


def score_candidates(names: list[str], images, labels, val_images, val_labels, epochs: float, config: NASConfig, stream: str,
                     num_classes: int, log=print) -> dict[str, float]:
    """Validation accuracy of every candidate after training on (images, labels); NaN for a diverged one."""
    scores = {}
    for i, name in enumerate(names):
        net = build_model(name, tuple(images.shape[1:]), num_classes, make_generator(config.seed, "nas", name, "init"), images.device)
        try:
            train_steps(net, images, labels, epochs, config.batch_size, config.lr, make_generator(config.seed, "nas", stream, name))
            scores[name] = test_accuracy(net, val_images, val_labels)
        except TrainingDiverged:
            scores[name] = float("nan")
        if log and (i + 1) % max(1, len(names) // 8) == 0:
            log(f"{stream}: {i + 1}/{len(names)} candidates trained")
    return scores


def spearman(a: dict[str, float], b: dict[str, float]) -> float:
    from scipy.stats import spearmanr

    keys = [k for k in a if k in b and np.isfinite(a[k]) and np.isfinite(b[k])]
    if len(keys) < 3:
        return float("nan")
    return float(spearmanr([a[k] for k in keys], [b[k] for k in keys]).statistic)


def run_nas(config: NASConfig, out: str | os.PathLike, data_root=None, device: str | None = "cpu", log=print) -> dict:
    """Search with one proxy; the reference ranking is computed once per output folder and reused."""
    from ..data import load_dataset, real_data
    from ..device import resolve_device

    torch_device = resolve_device(device)
    names = search_space(config.space)
    data = load_dataset(config.dataset, data_root=data_root)
    real = real_data(data, "train", torch_device)
    names, unfit = _fitting(names, real)
    if unfit:
        log(f"{len(unfit)} of {len(names) + len(unfit)} candidates cannot take {list(real.shape)} inputs and are left out "
            f"(e.g. {unfit[0][0]}: {unfit[0][1]})")
    if len(names) < 3:
        raise DistillsetError(f"only {len(names)} candidates of space '{config.space}' fit {list(real.shape)} inputs; "
                              "a rank correlation needs at least 3")
    search_idx, val_idx = validation_split(real, config.validation_fraction, config.seed)
    val_x, val_y = real.images[val_idx], real.labels[val_idx]
    search_x, search_y = real.images[search_idx], real.labels[search_idx]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    reference_key = {k: v for k, v in asdict(config).items() if k in ("dataset", "space", "reference_epochs", "validation_fraction",
                                                                     "batch_size", "lr", "seed")}
    reference_path = out / "reference.json"
    reference = json.loads(reference_path.read_text()) if reference_path.is_file() else None
    if reference is None or reference.get("key") != reference_key:
        log(f"reference: {len(names)} candidates x {config.reference_epochs} epochs on {len(search_idx)} images")
        start = time.perf_counter()
        scores = score_candidates(names, search_x, search_y, val_x, val_y, config.reference_epochs, config, "reference",
                                  real.num_classes, log)
        reference = {"key": reference_key, "scores": scores, "seconds": time.perf_counter() - start}
        atomic_write_json(reference_path, reference)

    proxy_x, proxy_y, proxy_name, epochs = _proxy(config, real, data.name, search_idx, torch_device)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if torch_device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(torch_device)
    start = time.perf_counter()
    scores = score_candidates(names, proxy_x, proxy_y, val_x, val_y, epochs, config, f"proxy:{proxy_name}", real.num_classes, log)
    seconds = time.perf_counter() - start
    memory = {"proxy_tensor_mb": (proxy_x.numel() * proxy_x.element_size()) / 2**20,
              "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "peak_rss_growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024}
    if torch_device.type == "cuda":
        memory["cuda_peak_mb"] = torch.cuda.max_memory_allocated(torch_device) / 2**20
    finite = {k: v for k, v in scores.items() if np.isfinite(v)}
    if not finite:
        raise DistillsetError(f"every candidate diverged on proxy {proxy_name}")
    chosen = max(finite, key=finite.get)
    best_reference = max((v for v in reference["scores"].values() if np.isfinite(v)), default=float("nan"))
    net = build_model(chosen, real.shape, real.num_classes, make_generator(config.seed, "nas", chosen, "final"), torch_device)
    train_steps(net, search_x, search_y, config.final_epochs, config.batch_size, config.lr, make_generator(config.seed, "nas", "final"))
    test_x = real_data(data, "test", torch_device)
    final_test = test_accuracy(net, test_x.images, test_x.labels)
    result = {"config": asdict(config), "proxy": proxy_name, "proxy_images": int(proxy_x.shape[0]), "proxy_epochs": epochs,
              "spearman": spearman(scores, reference["scores"]), "chosen": chosen,
              "chosen_reference_accuracy": reference["scores"].get(chosen), "best_reference_accuracy": best_reference,
              "chosen_test_accuracy_after_retraining": final_test, "search_seconds": seconds,
              "reference_seconds": reference["seconds"], "memory": memory, "scores": scores}
    atomic_write_json(out / f"nas-{_safe(proxy_name)}.json", result)
    return result


def _proxy(config: NASConfig, real: RealData, dataset: str, search_idx: torch.Tensor, device) -> tuple:
    if config.proxy == "whole":
        return real.images[search_idx], real.labels[search_idx], f"whole-{config.proxy_epochs:g}ep", config.proxy_epochs
    if config.proxy == "random":
        in_search = torch.zeros(real.labels.numel(), dtype=torch.bool, device=real.device)
        in_search[search_idx] = True
        generator = make_generator(config.seed, "nas", "random-proxy")
        picks = []
        for c in range(real.num_classes):
            pool = real.class_indices[c][in_search[real.class_indices[c]]]
            if pool.numel() < config.ipc:
                raise DistillsetError(f"class {c} has {pool.numel()} search images, fewer than --ipc {config.ipc}")
            picks.append(pool[torch.randperm(pool.numel(), generator=generator)[:config.ipc].to(pool.device)])
        idx = torch.cat(picks)
        return real.images[idx], real.labels[idx], f"random-ipc{config.ipc}", config.proxy_epochs
    path = Path(config.proxy)
    if not path.is_file():
        raise DistillsetError(f"--proxy {config.proxy} is neither random, whole nor an existing SynSet file")
    synset = SynSet.load(path)
    if synset.dataset != dataset or synset.shape != real.shape:
        raise DistillsetError(f"{path} is a {synset.dataset} set of {list(synset.shape)} images; the search runs on "
                              f"{dataset} {list(real.shape)}")
    if synset.zca_matrix is not None:
        raise DistillsetError(f"{path} lives in ZCA-whitened space; NAS validates on plain images, use a set made without ZCA")
    return synset.images.to(device), synset.labels.to(device), f"{synset.method}-ipc{synset.ipc}", config.proxy_epochs


def _fitting(names: list[str], real: RealData) -> tuple[list[str], list[tuple[str, str]]]:
    """The candidates that can be built for this data's shape, and why the others cannot."""
    fit, unfit = [], []
    for name in names:
        try:
            build_model(name, real.shape, real.num_classes)
            fit.append(name)
        except DistillsetError as exc:
            unfit.append((name, str(exc)))
    return fit, unfit


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in text)


def report(result: dict) -> str:
    m = result["memory"]
    return "\n".join([
        f"proxy {result['proxy']} ({result['proxy_images']} images x {result['proxy_epochs']:g} epochs), "
        f"{len(result['scores'])} candidates of space '{result['config']['space']}'",
        f"  Spearman rank correlation with the whole-data reference: {result['spearman']:.3f}",
        f"  chosen: {result['chosen']} (reference validation accuracy {100 * result['chosen_reference_accuracy']:.2f}%, "
        f"best in the space {100 * result['best_reference_accuracy']:.2f}%)",
        f"  chosen, retrained on the whole training data, test accuracy: {100 * result['chosen_test_accuracy_after_retraining']:.2f}%",
        f"  search time {result['search_seconds']:.1f} s (reference {result['reference_seconds']:.1f} s); proxy tensors "
        f"{m['proxy_tensor_mb']:.2f} MB, process peak RSS {m['process_peak_rss_mb']:.0f} MB",
    ])
