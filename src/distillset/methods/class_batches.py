"""What the class-wise matching methods (DC/DSA, DM) share: each step's real and synthetic batches, class by
class, and the memory budget of their real pass.

Every rank draws the real batches and DSA transforms of ALL classes from the step's generator (so the random
streams, and hence the result, do not depend on the number of ranks) and keeps its own classes. The indices
are assembled on the host and moved in one copy each; DSA applies one transform per class, shared by the
class's real and synthetic images, with host-side indices (no read-back).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..device import to_device
from ..distributed import context
from .memory import activation_bytes_per_image, memory_budget


@dataclass
class ClassBatch:
    """This rank's classes, and their real and synthetic images grouped by class in that order."""

    classes: list[int]
    counts: list[int]  # real images per class
    x_real: torch.Tensor
    y_real: torch.Tensor
    x_syn: torch.Tensor
    y_syn: torch.Tensor


class ClassBatches:
    """Mixin for engines with ``real``, ``config`` (ipc, batch_real) and ``dsa`` (a DSA or None)."""

    def setup_real_pass(self) -> None:
        """The memory budget of the real pass (methods.memory); the per-image cost is measured on first use."""
        self.memory_budget = memory_budget(self.real.device)
        self._per_image_bytes: int | None = None

    def per_image_bytes(self, net: nn.Module, x: torch.Tensor) -> int:
        if self._per_image_bytes is None:
            self._per_image_bytes = activation_bytes_per_image(net, x[:1])
        return self._per_image_bytes

    def class_batch(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> ClassBatch | None:
        """This step's batches (the set holds ipc images per class, in class order); None on a rank without classes."""
        cfg, real = self.config, self.real
        k = real.num_classes
        picks = [real.sample_indices_host(c, cfg.batch_real, generator) for c in range(k)]
        params_dsa = self.dsa.draw(k, tuple(real.shape[1:]), generator) if self.dsa is not None else None
        classes = context().mine(range(k))
        if not classes:
            return None
        counts = [picks[c].numel() for c in classes]
        real_idx = to_device(torch.cat([picks[c] for c in classes]), images.device)
        syn_idx = to_device(torch.cat([torch.arange(c * cfg.ipc, (c + 1) * cfg.ipc) for c in classes]), images.device)
        x_real, y_real = real.images[real_idx], real.labels[real_idx]
        x_syn, y_syn = images[syn_idx], labels[syn_idx]
        if params_dsa is not None:  # one transform per class, shared by its real and synthetic batch
            owners = torch.tensor(classes)
            x_real = self.dsa.apply(x_real, params_dsa, owners.repeat_interleave(torch.tensor(counts)))
            x_syn = self.dsa.apply(x_syn, params_dsa, owners.repeat_interleave(cfg.ipc))
        return ClassBatch(classes, counts, x_real, y_real, x_syn, y_syn)
