"""The evaluation protocol of the DC/DSA/DM papers: train fresh networks on a SynSet, test on real data.

Each run: a freshly initialised network, SGD (momentum 0.9, weight decay 5e-4), lr 0.01 (or the SynSet's
learned lr), batch 256, lr x0.1 once at half the epochs (placed and restarted exactly as the reference
code's ``evaluate_synset``: TrainConfig's "reference" schedule), then ONE test at the end. We report the
final-epoch accuracy only: picking the best epoch or iteration on the test set (as some reference
code does) overstates results and is never offered. Runs whose loss turns NaN are stopped and
reported as failed; the others still count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.real import normalize_pixels
from ..distributed import context
from ..errors import DistillsetError
from ..models import build_model, check_model_name
from ..seeding import make_generator
from ..synset import SynSet
from ..training import Augment, TrainConfig, TrainingDiverged, test_accuracy, train_model
from .batched import can_batch, train_models_batched

__all__ = ["Augment", "EvalResults", "ModelResult", "TrainConfig", "each_run", "evaluate_synset", "format_table",
           "prepare_test_data", "test_accuracy", "train_model"]


@dataclass
class ModelResult:
    """Accuracies (fractions) of the runs of one model; failed runs are listed, not averaged."""

    accs: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time of all runs of this model, training and testing
    protocol: dict = field(default_factory=dict)  # how this model was trained (augmentation, epochs, ...), when known
    outcomes: dict[int, float | str] = field(default_factory=dict)  # run index -> accuracy, or its failure message

    @property
    def mean(self) -> float:
        return float(np.mean(self.accs)) if self.accs else float("nan")

    @property
    def std(self) -> float:
        return float(np.std(self.accs)) if self.accs else float("nan")

    def as_dict(self) -> dict:
        out = {"mean": self.mean, "std": self.std, "accs": list(self.accs)}
        if self.failed:
            out["failed"] = list(self.failed)
        return out


@dataclass
class EvalResults:
    dataset: str
    results: dict[str, ModelResult]
    config: dict

    def as_dict(self) -> dict:
        out = {"dataset": self.dataset, "results": {m: r.as_dict() for m, r in self.results.items()}, "config": self.config}
        if any(r.protocol for r in self.results.values()):  # how each model was trained: augmentation, epochs, batch
            out["protocol"] = {m: dict(r.protocol) for m, r in self.results.items()}
        return out


def prepare_test_data(synset: SynSet, pixels, labels, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Put real test pixels through the SynSet's own input pipeline (normalisation, then ZCA)."""
    x = normalize_pixels(pixels, synset.mean, synset.std, device)
    if tuple(x.shape[1:]) != synset.shape:
        raise DistillsetError(f"test images have shape {list(x.shape[1:])} but the SynSet's images are {list(synset.shape)}")
    if synset.zca_matrix is not None:
        flat = x.reshape(x.shape[0], -1) - synset.zca_mean.to(device)
        x = (flat @ synset.zca_matrix.to(device).T).reshape(x.shape)
    return x, torch.as_tensor(np.asarray(labels), dtype=torch.long, device=device)


def evaluate_synset(synset: SynSet, test_pixels, test_labels, models: list[str] = ("convnet",), runs: int = 5,
                    epochs: int | None = None, lr: float | None = None, seed: int = 0, device: str | torch.device = "cpu",
                    augment: Augment | None = None, batch_size: int = 256, use_soft_labels: bool = True,
                    strategy: str = "auto", progress: Callable[[str], None] | None = None,
                    run_indices: Sequence[int] | None = None, teacher: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    temperature: float = 1.0, checkpoint_dir: str | Path | None = None,
                    schedule: str = "reference", compile: bool = False) -> EvalResults:
    """Train ``runs`` fresh networks of each model on the SynSet; test each once on the real test split.

    ``epochs`` defaults to 300 (1000 with augmentation); ``lr`` defaults to the SynSet's learned lr
    if it has one, else 0.01. ``schedule`` "reference" trains and decays as the DC/DSA/DM/MTT code's
    ``evaluate_synset`` does (``epochs`` + 1 passes, a new SGD at lr x0.1 after pass ``epochs // 2 + 1``);
    "half" is ``epochs`` passes with the decay at half and the momentum kept (:class:`TrainConfig`).
    Every run draws its initialisation and shuffles from its own generator derived from ``seed``, the
    model name and the run index.

    ``strategy``: "sequential" trains the runs one after another; "batched" trains them all at once
    (torch.func.vmap over stacked parameters; not for BatchNorm networks); "auto" batches on CUDA and
    loops on the CPU, where batching measured slower (BENCHMARKS.md).

    ``run_indices`` (default ``range(runs)``) trains only those runs of the ``runs``: each gives the same
    network and accuracy as in a full evaluation, so a long evaluation can be made and stored run by run.

    ``teacher`` (images -> logits, e.g. :class:`~distillset.evaluation.teacher.Teacher`) relabels every augmented
    batch and the networks learn by knowledge distillation at ``temperature`` (the set's labels unused).

    ``checkpoint_dir``: each network trained one at a time saves its training state there about once a minute
    (``<model>-seed<s>-run<r>.safetensors``, removed when the run ends), so a run cut off resumes mid-training and ends
    with the same accuracy (:func:`~distillset.training.train_model`). For evaluations whose single network
    outlasts a session, such as the whole training set. Batched training does not checkpoint.

    ``compile``: torch.compile each network for its training steps (:class:`~distillset.training.TrainConfig`;
    about 1.35x faster on a CPU, the same bytes run to run but not the eager ones); networks trained one at a time.
    """
    if strategy not in ("auto", "sequential", "batched"):
        raise DistillsetError(f"unknown evaluation strategy '{strategy}'; use auto, sequential or batched")
    if runs < 1:
        raise DistillsetError(f"--runs must be at least 1, got {runs}")
    if compile and would_batch(strategy, device):
        raise DistillsetError("--compile trains the networks one at a time; add --strategy sequential")
    run_indices = list(range(runs)) if run_indices is None else [int(r) for r in run_indices]
    if any(not 0 <= r < runs for r in run_indices):
        raise DistillsetError(f"run indices {run_indices} must lie in 0..{runs - 1}")
    for name in models:  # refuse unknown names and shapes a model cannot take before any training starts
        check_model_name(name)
        build_model(name, synset.shape, synset.num_classes)
    epochs = epochs if epochs is not None else (1000 if augment is not None else 300)
    if epochs < 1:
        raise DistillsetError(f"--epochs must be at least 1, got {epochs}")
    if lr is None:
        lr = float(synset.lr) if synset.lr is not None else 0.01
    if not (np.isfinite(lr) and lr > 0):
        raise DistillsetError(f"the training lr must be a positive number, got {lr}")
    if not (np.isfinite(temperature) and temperature > 0):
        raise DistillsetError(f"the distillation temperature must be a positive number, got {temperature}")
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, schedule=schedule, compile=compile)
    x_test, y_test = prepare_test_data(synset, test_pixels, test_labels, device)
    if len(y_test) == 0:
        raise DistillsetError("the test split is empty: there is nothing to test the trained networks on")
    if int(y_test.min()) < 0 or int(y_test.max()) >= synset.num_classes:
        raise DistillsetError(f"test labels span {int(y_test.min())}..{int(y_test.max())}, outside the set's classes "
                              f"0..{synset.num_classes - 1}")
    images = synset.images.to(device)
    soft = use_soft_labels and synset.soft_labels is not None and teacher is None
    targets = (synset.soft_labels if soft else synset.labels).to(device)
    label_mode = "teacher" if teacher is not None else "stored" if soft else "hard"
    ctx = context()  # under torchrun each rank trains its share of the runs; results are gathered everywhere
    results: dict[str, ModelResult] = {}
    for name in models:
        result = ModelResult()
        start = time.perf_counter()
        outcomes = []
        for run, net, failure in _trained_networks(name, synset, images, targets, config, ctx.mine(run_indices), seed, device,
                                                   augment, strategy, teacher, temperature,
                                                   Path(checkpoint_dir) if checkpoint_dir is not None else None):
            acc = None if failure is not None else test_accuracy(net, x_test, y_test, config.test_batch_size)
            outcomes.append((run, acc, failure))
            if progress:
                progress(f"{name} run {run + 1}/{runs}: " + (f"stopped, {failure}" if failure else f"accuracy {acc:.4f}"))
        for run, acc, failure in sorted(o for part in ctx.gather_objects(outcomes) for o in part):
            result.outcomes[run] = acc if failure is None else failure
            if failure is not None:
                result.failed.append(f"run {run}: {failure}")
            else:
                result.accs.append(acc)
        result.seconds = time.perf_counter() - start
        results[name] = result
    meta = asdict(config) | {"runs": runs, "run_indices": run_indices, "seed": seed, "models": list(models), "soft_labels": soft,
                             "labels": label_mode, "augment": augment is not None, "selection": "final epoch",
                             "strategy": strategy}
    if teacher is not None:
        meta |= {"temperature": temperature, "teacher": list(getattr(teacher, "names", ["(callable)"]))}
    return EvalResults(synset.dataset, results, meta)


def each_run(synset: SynSet, test_pixels, test_labels, model: str, runs: int, skip=(), **options):
    """Evaluate ``model``'s runs of ``runs`` not in ``skip``, yielding ``(run, accuracy, failure, seconds, epochs)``
    as they end (accuracy None when it failed; seconds: that run's share of the wall time): a caller stores every
    run, so a long evaluation cut off resumes at its next run. Each run is the network a full
    :func:`evaluate_synset` trains. Where :func:`evaluate_synset` would batch (CUDA, or ``strategy="batched"``)
    the pending runs are trained together, as in one full evaluation; elsewhere one at a time."""
    pending = [r for r in range(runs) if r not in skip]
    together = would_batch(options.get("strategy", "auto"), options.get("device", "cpu"))
    for group in ([pending] if together and pending else [[r] for r in pending]):
        start = time.perf_counter()
        results = evaluate_synset(synset, test_pixels, test_labels, models=[model], runs=runs, run_indices=group, **options)
        seconds = (time.perf_counter() - start) / len(group)
        for run in group:
            outcome = results.results[model].outcomes[run]
            failed = isinstance(outcome, str)
            yield run, None if failed else outcome, outcome if failed else None, seconds, results.config["epochs"]


def would_batch(strategy: str, device) -> bool:
    """Whether the runs of one model are trained together: "batched", or "auto" on CUDA (BENCHMARKS.md)."""
    return strategy == "batched" or (strategy == "auto" and torch.device(device).type == "cuda")


def _trained_networks(name: str, synset: SynSet, images, targets, config: TrainConfig, runs: list[int], seed: int, device,
                      augment: Augment | None, strategy: str, teacher=None, temperature: float = 1.0,
                      checkpoint_dir: Path | None = None) -> Iterator[tuple[int, nn.Module, str | None]]:
    """Yield (run, trained network, failure or None) for the given run indices: all at once when
    batching, else one at a time. A run's network depends only on (seed, model, run), never on which
    process trains it or beside which others."""
    from .batched import can_batch, train_models_batched  # batched imports this module

    def fresh(run: int) -> nn.Module:
        return build_model(name, synset.shape, synset.num_classes, make_generator(seed, "eval", name, run, "init"), device)

    def shuffles(run: int) -> torch.Generator:
        return make_generator(seed, "eval", name, run, "train")

    if not runs:
        return
    batched = would_batch(strategy, device) and teacher is None  # the vmap path has no teacher
    first = fresh(runs[0])
    if batched and len(runs) > 1 and can_batch(first):
        nets = [first] + [fresh(run) for run in runs[1:]]
        diverged = train_models_batched(nets, images, targets, config, [shuffles(run) for run in runs], augment)
        for run, net, bad in zip(runs, nets, diverged):
            yield run, net, "loss became NaN or infinite" if bad else None
        return
    for i, run in enumerate(runs):
        net = first if i == 0 else fresh(run)
        try:
            checkpoint = checkpoint_dir / f"{name}-seed{seed}-run{run}.safetensors" if checkpoint_dir is not None else None
            if checkpoint is not None:
                checkpoint_dir.mkdir(parents=True, exist_ok=True)
            train_model(net, images, targets, config, shuffles(run), augment, teacher=teacher, temperature=temperature,
                        checkpoint=checkpoint)
        except TrainingDiverged as exc:
            yield run, net, str(exc)
            continue
        yield run, net, None


def format_table(results: EvalResults) -> str:
    """A small Markdown table: model | mean +- std | runs | how the networks were trained (when known)."""
    lines = [f"| model | accuracy (%) | runs | training, dataset {results.dataset} |", "|---|---|---|---|"]
    for name, r in results.results.items():
        acc = "failed" if not r.accs else f"{100 * r.mean:.2f} +- {100 * r.std:.2f}"
        note = f" ({len(r.failed)} failed)" if r.failed else ""
        p = r.protocol
        how = (f"{p['steps']} learned steps (DD's evaluation), {p['init']} initialisation" if p.get("evaluation") == "learned-schedule"
               else f"{p['epochs']} epochs, augmentation {p['augment']}, batch {p['batch_size']}" if p else "")
        lines.append(f"| {name} | {acc} | {len(r.accs)}{note} | {how} |")
    return "\n".join(lines)

