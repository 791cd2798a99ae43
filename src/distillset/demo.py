"""``distillset demo``: the whole path on scikit-learn's digits, with no files or network needed.

Random coresets at 1, 10 and 50 images per class and the whole training split, each evaluated with
the paper protocol; optionally (``dc_iterations``) a DC row at 1 image per class. It is off by
default because on 8x8 digits the default ConvNet-3 (whose last instance norm sees 2x2 maps) gave DC
sets below random ones in every setting tried (BENCHMARKS.md), while DC works on MNIST.
"""

from __future__ import annotations

import os
from pathlib import Path

from .data import load_dataset, real_data
from .evaluation import evaluate_synset
from .condense import run_condense
from .runner import Log, resolve_device, run_coreset
from .synset import SynSet


def run_demo(out: str | os.PathLike = "runs/demo", runs: int = 3, epochs: int = 300, device: str = "cpu",
             seed: int = 0, ipcs: tuple[int, ...] = (1, 10, 50), dc_iterations: int = 0, log: Log = print) -> str:
    """Run the demo and return its Markdown table."""
    out = Path(out)
    torch_device = resolve_device(device)
    data = load_dataset("digits")
    rows = []
    if dc_iterations:
        log(f"condensing digits with DC, 1 image per class, {dc_iterations} iterations")
        outcome = run_condense("dc", "digits", 1, out / "dc-ipc1", iterations=dc_iterations, seed=seed, device=device,
                               options={"compile": False}, progress=False, log=log)
        result = evaluate_synset(outcome.synset, data.test_images, data.test_labels, runs=runs, epochs=epochs,
                                 seed=seed, device=torch_device).results["convnet"]
        rows.append((f"DC (gradient matching), 1/class, {dc_iterations} iterations", len(outcome.synset), result.mean,
                     result.std, outcome.directory / "grid.png"))
        log(f"DC ipc 1: {100 * result.mean:.1f}%")
    for ipc in ipcs:
        outcome = run_coreset("random", "digits", ipc, out / f"random-ipc{ipc}", seed=seed, device=device, log=log)
        result = evaluate_synset(outcome.synset, data.test_images, data.test_labels, runs=runs, epochs=epochs,
                                 seed=seed, device=torch_device).results["convnet"]
        rows.append((f"random coreset, {ipc}/class", len(outcome.synset), result.mean, result.std, outcome.directory / "grid.png"))
        log(f"random ipc {ipc}: {100 * result.mean:.1f}%")
    real = real_data(data, "train", "cpu")
    whole = SynSet(real.images, real.labels, "digits", real.num_classes, real.mean, real.std, "whole", 0)
    result = evaluate_synset(whole, data.test_images, data.test_labels, runs=runs, epochs=epochs, seed=seed,
                             device=torch_device).results["convnet"]
    rows.append(("whole training split", len(whole), result.mean, result.std, None))
    lines = [f"distillset demo: scikit-learn digits (8x8, 10 classes), ConvNet, {runs} runs x {epochs} epochs, "
             f"final-epoch test accuracy on {len(data.test_labels)} held-out images", "",
             "| training set | images | accuracy (%) |", "|---|---|---|"]
    lines += [f"| {name} | {n} | {100 * mean:.1f} +- {100 * std:.1f} |" for name, n, mean, std, _ in rows]
    lines += ["", "grids: " + ", ".join(str(g) for *_, g in rows if g is not None)]
    return "\n".join(lines)
