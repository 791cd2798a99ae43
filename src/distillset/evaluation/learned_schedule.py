"""DD's own evaluation: fresh networks trained by a set's learned step sizes, one step at a time.

A Dataset Distillation set (Wang et al., 2018) is a training procedure as much as images: T = steps x epochs plain
gradient steps theta_{t+1} = theta_t - lr_t * grad L_t(theta_t), where L_t is the cross-entropy on step t's images
and lr_t the step size learned with them, starting from a network drawn from the initialisation the set was
distilled for. The 2018 code evaluates its sets exactly so (``--test_distilled_lrs loaded`` on fresh
``unknown_init`` networks), and DD's published numbers (the DC paper's Table 1 quotes MNIST's 79.5 +- 8.1) are
measured so. The standard protocol (:mod:`.protocol`: hundreds of epochs of SGD at lr 0.01) is the DC paper's
comparison of the images alone, a different question.

Each run r draws its network from generator (seed, "eval-learned", model, r, "init") with the set's
``network_init``; "fixed" sets (the 2018 code's plan) replay the same steps every run, "shuffled" sets draw their
minibatch order from (seed, "eval-learned", model, r, "steps"). One test per network, after the last step: nothing
is chosen on the test split.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from ..errors import DistillsetError
from ..models import build_model
from ..seeding import make_generator
from ..synset import SynSet
from ..training import fixed_step_groups, shuffled_step_batches, test_accuracy
from .protocol import EvalResults, ModelResult, prepare_test_data


def learned_plan(synset: SynSet, generator: torch.Generator) -> tuple[list[torch.Tensor], list[float]]:
    """(image indices of each step, step size of each step) as the set was distilled; refuses a set without them."""
    config = synset.config
    lrs = config.get("learned_step_sizes")
    if not lrs or synset.method != "dd":
        raise DistillsetError(f"the learned-schedule evaluation needs a DD set with learned step sizes; this is a "
                              f"'{synset.method}' set: evaluate it with the standard protocol")
    steps, epochs = int(config["steps"]), int(config["epochs"])
    if len(lrs) != steps * epochs:
        raise DistillsetError(f"the set stores {len(lrs)} step sizes for {steps} steps x {epochs} epochs; the set is corrupt")
    if config.get("step_images", "shuffled") == "fixed":
        groups = fixed_step_groups(synset.labels, steps)
        return [groups[t % steps] for t in range(steps * epochs)], [float(v) for v in lrs]
    batches = shuffled_step_batches(len(synset.labels), int(config.get("batch_syn") or 0), generator)
    return [next(batches) for _ in range(steps * epochs)], [float(v) for v in lrs]


def train_by_learned_schedule(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                              plan: list[torch.Tensor], lrs: list[float]) -> bool:
    """Plain gradient steps (no momentum, no weight decay), step t on images[plan[t]] at lr_t; False if the loss
    stopped being finite."""
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    for index, lr in zip(plan, lrs):
        index = index.to(images.device)
        loss = F.cross_entropy(net(images[index]), labels[index])
        if not torch.isfinite(loss):
            return False
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(g, alpha=lr)
    return True


def each_learned_schedule_run(synset: SynSet, test_pixels, test_labels, runs: int, skip=(), seed: int = 0,
                              device: str | torch.device = "cpu") -> Iterator[tuple[int, float | None, str | None, float, int]]:
    """Train and test ``runs`` fresh networks (those not in ``skip``), yielding ``(run, accuracy, failure, seconds,
    steps)`` as each ends, the shape :func:`~.protocol.each_run` yields, so a caller stores and resumes run by run."""
    model = str(synset.config.get("model", "convnet"))
    init = str(synset.config.get("network_init", "default"))
    x_test, y_test = prepare_test_data(synset, test_pixels, test_labels, device)
    images, labels = synset.images.to(device), synset.labels.to(device)
    learned_plan(synset, make_generator(seed, "eval-learned", model, 0, "steps"))  # refuse a set without a plan now
    for run in range(runs):
        if run in skip:
            continue
        start = time.perf_counter()
        plan, lrs = learned_plan(synset, make_generator(seed, "eval-learned", model, run, "steps"))
        net = build_model(model, synset.shape, synset.num_classes, make_generator(seed, "eval-learned", model, run, "init"),
                          device, init=init)
        if not train_by_learned_schedule(net, images, labels, plan, lrs):
            yield run, None, "loss became NaN or infinite", time.perf_counter() - start, len(plan)
            continue
        yield run, test_accuracy(net, x_test, y_test), None, time.perf_counter() - start, len(plan)


def evaluate_learned_schedule(synset: SynSet, test_pixels, test_labels, runs: int, seed: int = 0,
                              device: str | torch.device = "cpu") -> EvalResults:
    """All ``runs`` networks of :func:`each_learned_schedule_run` as one result (``distillset evaluate --lr-schedule
    learned``), under the set's own model name."""
    model = str(synset.config.get("model", "convnet"))
    result, start = ModelResult(), time.perf_counter()
    steps = 0
    for run, acc, failure, _, steps in each_learned_schedule_run(synset, test_pixels, test_labels, runs, seed=seed, device=device):
        result.outcomes[run] = acc if failure is None else failure
        if failure is None:
            result.accs.append(acc)
        else:
            result.failed.append(f"run {run}: {failure}")
    result.seconds = time.perf_counter() - start
    result.protocol = {"evaluation": "learned-schedule", "steps": steps, "init": synset.config.get("network_init", "default")}
    return EvalResults(synset.dataset, {model: result}, {"runs": runs, "seed": seed, "models": [model], "schedule": "learned",
                                                         "selection": "final step", "labels": "hard"})
