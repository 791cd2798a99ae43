"""Differentiating through unrolled SGD on synthetic data: the machinery of MTT, DATM and DD.

A student network is a function of ONE flat parameter vector (torch.func.functional_call over views of
it), so a trajectory theta_0 -> theta_1 -> ... -> theta_S with theta_{i+1} = theta_i - lr_i * grad L_i(theta_i)
is a chain of plain tensor operations, and the gradient of an outer loss of theta_S with respect to the
synthetic images, the (soft) labels and the learned step sizes can be computed two ways:

* ``plain``: build the whole graph (create_graph=True at every step) and call autograd once, as MTT's
  reference code does. Memory grows with the number of steps: every step's activations are kept.
* ``checkpointed``: run the steps forward without a graph, keeping only each theta_i (P floats, no
  activations), then walk back with the adjoint a_i = dOuter/dtheta_i, recomputing one step's graph at
  a time: a_i = a_{i+1} - lr_i * H_i a_{i+1} (a Hessian-vector product), dOuter/dX += -lr_i * d(g_i . a_{i+1})/dX,
  dOuter/dlr_i = -g_i . a_{i+1}. This is the same gradient exactly (tests check it), computed with the
  activation memory of one step whatever the number of steps (the TESLA observation); only the
  parameter vectors (1.2 MB per step for ConvNet on MNIST) accumulate.

Augmentation is fixed per step before the unroll (DSA parameters drawn once), so recomputation sees
exactly the inputs the forward pass saw.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..augment import DSA, DSAParams
from ..training import fixed_step_groups, shuffled_step_batches


class FlatStudent:
    """A network evaluated at a flat parameter vector; buffers (if any) are used as the model holds them."""

    def __init__(self, net: nn.Module) -> None:
        self.names = [n for n, _ in net.named_parameters()]
        self.shapes = [tuple(p.shape) for _, p in net.named_parameters()]
        self.numels = [p.numel() for _, p in net.named_parameters()]
        self.buffers = {n: b.detach().clone() for n, b in net.named_buffers()}
        self.template = copy.deepcopy(net).to("meta")
        self.template.train()

    @property
    def num_params(self) -> int:
        return sum(self.numels)

    @staticmethod
    def flatten(net: nn.Module) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in net.parameters()])

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: t.view(s) for n, t, s in zip(self.names, torch.split(flat, self.numels), self.shapes)}

    def __call__(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # BatchNorm may update them in place; a student built on another device follows the data (no copy when on it)
        buffers = {n: b.to(x.device).clone() for n, b in self.buffers.items()}
        return functional_call(self.template, (self.unflatten(flat), buffers), (x,))


@dataclass
class Step:
    """One unrolled step: which synthetic images form its minibatch and the augmentation applied to them."""

    index: torch.Tensor
    augmentation: DSAParams | None = None


def student_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against class indices, or against the softmax of soft-label logits [B, K]."""
    if targets.dim() == 2:
        return -(F.softmax(targets, dim=1) * F.log_softmax(logits, dim=1)).sum(1).mean()
    return F.cross_entropy(logits, targets)


class Unroller:
    """Runs ``steps`` SGD steps of a :class:`FlatStudent` on synthetic data and differentiates an outer loss."""

    def __init__(self, student: FlatStudent, dsa: DSA | None = None) -> None:
        self.student, self.dsa = student, dsa

    def _inputs(self, images: torch.Tensor, step: Step) -> torch.Tensor:
        x = images[step.index]
        if self.dsa is not None and step.augmentation is not None:
            x = self.dsa.apply(x, step.augmentation, torch.arange(x.shape[0]))
        return x

    def _step_loss(self, theta: torch.Tensor, images: torch.Tensor, targets: torch.Tensor, step: Step) -> torch.Tensor:
        return student_loss(self.student(theta, self._inputs(images, step)), targets[step.index])

    @staticmethod
    def _lr(lrs: torch.Tensor, i: int) -> torch.Tensor:
        return lrs[i] if lrs.dim() else lrs

    def run(self, start: torch.Tensor, images: torch.Tensor, targets: torch.Tensor, lrs: torch.Tensor, steps: list[Step],
            outer: Callable[[torch.Tensor], torch.Tensor], wrt: list[torch.Tensor], checkpointed: bool = False
            ) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        """The outer loss of the unrolled parameters and its gradients with respect to ``wrt``.

        ``wrt`` holds leaves among ``images``, ``targets`` and ``lrs`` (a scalar shared by all steps or
        one per step); gradients of leaves the loss does not depend on are None.
        """
        if checkpointed:
            return self._run_checkpointed(start, images, targets, lrs, steps, outer, wrt)
        theta = start.detach().requires_grad_(True)
        for i, step in enumerate(steps):
            grad = torch.autograd.grad(self._step_loss(theta, images, targets, step), theta, create_graph=True)[0]
            theta = theta - self._lr(lrs, i) * grad
        loss = outer(theta)
        grads = torch.autograd.grad(loss, wrt, allow_unused=True)
        return loss.detach(), list(grads)

    def _run_checkpointed(self, start, images, targets, lrs, steps, outer, wrt):
        thetas = [start.detach()]
        for i, step in enumerate(steps):
            theta = thetas[-1].clone().requires_grad_(True)
            with torch.enable_grad():
                grad = torch.autograd.grad(self._step_loss(theta, images.detach(), targets.detach(), step), theta)[0]
            thetas.append((theta.detach() - self._lr(lrs, i).detach() * grad).detach())
        final = thetas[-1].clone().requires_grad_(True)
        loss = outer(final)
        adjoint = torch.autograd.grad(loss, final)[0]
        totals: list[torch.Tensor | None] = [None] * len(wrt)
        lr_index = next((j for j, t in enumerate(wrt) if t is lrs), None)
        others = [t for t in wrt if t is not lrs]
        for i in range(len(steps) - 1, -1, -1):
            theta = thetas[i].clone().requires_grad_(True)
            lr = self._lr(lrs, i).detach()
            grad = torch.autograd.grad(self._step_loss(theta, images, targets, steps[i]), theta, create_graph=True)[0]
            directional = (grad * adjoint).sum()
            parts = torch.autograd.grad(directional, [theta, *others], allow_unused=True)
            hvp, rest = parts[0], iter(parts[1:])
            for j in range(len(wrt)):
                if j == lr_index:
                    contribution = -directional.detach()
                    if lrs.dim():
                        contribution = torch.zeros_like(lrs).index_fill(0, torch.tensor([i], device=lrs.device), contribution)
                else:
                    part = next(rest)
                    contribution = None if part is None else -lr * part
                if contribution is not None:
                    totals[j] = contribution if totals[j] is None else totals[j] + contribution
            adjoint = adjoint - lr * hvp if hvp is not None else adjoint
        return loss.detach(), totals


def draw_steps(num_images: int, steps: int, batch: int, generator: torch.Generator, dsa: DSA | None,
               size: tuple[int, int], device: torch.device) -> list[Step]:
    """Minibatches that walk through shuffled synthetic images (reshuffled when exhausted), plus DSA draws."""
    batches, plan = shuffled_step_batches(num_images, batch, generator), []
    for _ in range(steps):
        index = next(batches).to(device)
        plan.append(Step(index, dsa.draw_batch(len(index), size, generator) if dsa is not None else None))
    return plan


def fixed_steps(labels: torch.Tensor, steps: int, epochs: int, generator: torch.Generator, dsa: DSA | None,
                size: tuple[int, int]) -> list[Step]:
    """The 2018 DD code's plan (:func:`~distillset.training.fixed_step_groups`): step s always trains on the s-th
    group of every class, and the ``steps`` steps repeat ``epochs`` times, so each image always meets the same step
    sizes. DSA parameters (when given) are drawn per step."""
    groups = fixed_step_groups(labels, steps)
    return [Step(groups[s], dsa.draw_batch(len(groups[s]), size, generator) if dsa is not None else None)
            for _ in range(epochs) for s in range(steps)]
