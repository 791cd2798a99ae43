"""Keeping one real pass inside a memory budget, without changing what it computes.

DC/DSA on a GPU push the real batches of all classes through one forward and one backward (``batched``), and
DM embeds all of them at once. At CIFAR-100 scale (100 classes x 256 images through a 128-wide ConvNet) that
is ~50 GB of activations for DC and ~27 GB for DM's embedding. Both passes treat every image on its own
(instance norm, frozen BatchNorm in DC), so splitting the classes into groups that fit a budget gives the same
per-class results; only the group sizes change, never the maths.

The budget: ``$DISTILLSET_MEMORY_BUDGET_GB`` when set, else half the free memory of the GPU when the engine
is built; on the CPU there is no limit (the CPU paths already work class by class or in chunks of 256).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..errors import DistillsetError

# stored activations per forward output, with their gradients and the captured layer inputs of the batched
# real-gradient pass: a generous factor, so an estimate errs on the side of smaller groups
ACTIVATION_FACTOR = 3


def memory_budget(device: torch.device) -> int | None:
    """Bytes one real pass may use on ``device``, or None for no limit (see the module docstring)."""
    text = os.environ.get("DISTILLSET_MEMORY_BUDGET_GB")
    if text:
        try:
            gigabytes = float(text)
        except ValueError:
            gigabytes = float("nan")
        if not gigabytes > 0:
            raise DistillsetError(f"DISTILLSET_MEMORY_BUDGET_GB must be a positive number of GiB, got {text!r}")
        return int(gigabytes * 2 ** 30)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 2
    return None


@torch.no_grad()
def activation_bytes_per_image(net: nn.Module, example: torch.Tensor) -> int:
    """Bytes of every leaf module's output for ONE image (``example``: [1, C, H, W]) times
    :data:`ACTIVATION_FACTOR`: an upper estimate of what one more image costs in a pass with autograd."""
    total = 0

    def count(module, args, output) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()

    leaves = [m for m in net.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    was_training = net.training
    try:
        net.eval()  # one image cannot feed a train-mode BatchNorm; the shapes are the same
        net(example)
    finally:
        net.train(was_training)
        for h in handles:
            h.remove()
    return ACTIVATION_FACTOR * (total + example.numel() * example.element_size())


def class_groups(counts: list[int], per_image: int, budget: int | None) -> list[tuple[int, int]]:
    """Consecutive class ranges [lo, hi) whose images fit ``budget`` bytes at ``per_image`` each (always at least
    one class per group, so a class larger than the budget goes alone); one group when there is no budget."""
    if budget is None or not counts:
        return [(0, len(counts))]
    groups, lo, used = [], 0, 0
    for c, n in enumerate(counts):
        cost = n * per_image
        if c > lo and used + cost > budget:
            groups.append((lo, c))
            lo, used = c, 0
        used += cost
    groups.append((lo, len(counts)))
    return groups
