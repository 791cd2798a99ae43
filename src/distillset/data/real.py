"""Real data as methods use it: one normalised float tensor on the device plus a per-class index.

Methods sample class-balanced batches many thousands of times; indexing one resident tensor with
per-class index tensors is far cheaper than any DataLoader for in-memory data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..device import to_device
from ..errors import DistillsetError

if TYPE_CHECKING:
    from ..augment.zca import ZCA


def normalize_pixels(pixels: np.ndarray | torch.Tensor, mean, std, device: str | torch.device = "cpu") -> torch.Tensor:
    """The input pipeline of DESIGN.md: x = pixels/255, then (x - mean)/std per channel, as float32."""
    x = torch.as_tensor(pixels).to(device=device)
    x = x.to(torch.float32).div_(255.0)
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    if mean_t.shape[1] not in (1, x.shape[1]) or std_t.shape[1] not in (1, x.shape[1]):
        raise DistillsetError(f"normalisation has {mean_t.shape[1]} channel(s) but the images have {x.shape[1]}")
    return x.sub_(mean_t).div_(std_t)


@dataclass
class RealData:
    """Normalised images [N, C, H, W] and labels [N] on one device, with per-class index tensors."""

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    class_indices: list[torch.Tensor]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str = ""
    class_names: list[str] | None = None
    zca: "ZCA | None" = None  # set when ``images`` are ZCA-whitened (see :meth:`whitened`)

    @classmethod
    def from_pixels(cls, pixels, labels, num_classes: int, mean, std, device="cpu", name: str = "", class_names=None) -> "RealData":
        images = normalize_pixels(pixels, mean, std, device)
        labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=device)
        order = torch.argsort(labels_t, stable=True)
        counts = torch.bincount(labels_t, minlength=num_classes).tolist()
        class_indices = list(torch.split(order, counts))
        return cls(images, labels_t, num_classes, class_indices, tuple(mean), tuple(std), name, class_names)

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def class_count(self, c: int) -> int:
        return int(self.class_indices[c].numel())

    def check_ipc(self, ipc: int) -> None:
        """An ipc larger than the smallest class cannot be supplied: say which class and how many it has."""
        if ipc < 1:
            raise DistillsetError(f"ipc must be at least 1, got {ipc}")
        counts = [self.class_count(c) for c in range(self.num_classes)]
        smallest = int(np.argmin(counts))
        if ipc > counts[smallest]:
            name = self.class_names[smallest] if self.class_names else str(smallest)
            if counts[smallest] == 0:
                raise DistillsetError(f"class {smallest} ('{name}') has no training images, so no set can hold {ipc} of "
                                      "them; give that class images (or leave it out of the data)")
            raise DistillsetError(
                f"ipc {ipc} is larger than class {smallest} ('{name}'), which has only {counts[smallest]} training "
                f"images; use --ipc {counts[smallest]} or less"
            )

    def sample_indices(self, c: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` distinct indices of class ``c`` (all of them, shuffled, when the class has fewer), on the device."""
        return to_device(self.sample_indices_host(c, n, generator), self.device)

    def sample_indices_host(self, c: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """As :meth:`sample_indices`, as a host tensor: a caller drawing for every class concatenates them and
        moves the batch in one copy, instead of one (stream-waiting) copy per class."""
        pool = self._host_class_indices()[c]
        return pool[torch.randperm(pool.numel(), generator=generator)[:n]]

    def sample_every_class(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """:meth:`sample_indices` of every class in turn, concatenated on the host and moved in one copy."""
        return to_device(torch.cat([self.sample_indices_host(c, n, generator) for c in range(self.num_classes)]), self.device)

    def _host_class_indices(self) -> list[torch.Tensor]:
        # not a field (a replace()d copy builds its own), and keyed on the index list itself, so assigning new
        # class_indices can never leave a stale host copy behind
        key, cached = self.__dict__.get("_host_indices", (None, None))
        if key is not self.class_indices:
            key, cached = self.class_indices, [pool.cpu() for pool in self.class_indices]
            self.__dict__["_host_indices"] = (key, cached)
        return cached

    def subset(self, indices: torch.Tensor) -> "RealData":
        """The images at ``indices`` with their labels, classes and name unchanged (e.g. the part of the
        training split a NAS search may learn from, its validation images held out)."""
        idx = torch.as_tensor(indices, dtype=torch.long, device=self.device)
        labels = self.labels[idx]
        order = torch.argsort(labels, stable=True)
        counts = torch.bincount(labels, minlength=self.num_classes).tolist()
        return replace(self, images=self.images[idx], labels=labels, class_indices=list(torch.split(order, counts)))

    def subset_classes(self, classes: list[int]) -> "RealData":
        """Only the images of ``classes``, relabelled 0..len(classes)-1 in the given order (class-incremental
        steps see their own classes only). The name records the subset, so caches keyed on it stay apart."""
        if len(set(classes)) != len(classes) or not all(0 <= c < self.num_classes for c in classes):
            raise DistillsetError(f"a class subset must list distinct classes in [0, {self.num_classes}), got {classes}")
        idx = torch.cat([self.class_indices[c] for c in classes])
        new_labels = torch.cat([torch.full((self.class_indices[c].numel(),), i, dtype=torch.long, device=self.device)
                                for i, c in enumerate(classes)])
        names = [self.class_names[c] for c in classes] if self.class_names else None
        subset = RealData(self.images[idx], new_labels, len(classes), [], self.mean, self.std,
                          f"{self.name}[classes={','.join(map(str, classes))}]", names, self.zca)
        counts = [self.class_indices[c].numel() for c in classes]
        subset.class_indices = list(torch.split(torch.arange(idx.numel(), device=self.device), counts))
        return subset

    def pixels(self) -> torch.Tensor:
        """The images back in raw [0, 1] pixel space (normalisation undone)."""
        if self.zca is not None:
            raise DistillsetError("these images are ZCA-whitened; their raw pixels are not kept")
        c = self.images.shape[1]
        mean = torch.tensor(self.mean, dtype=self.images.dtype, device=self.device).expand(c).view(1, c, 1, 1)
        std = torch.tensor(self.std, dtype=self.images.dtype, device=self.device).expand(c).view(1, c, 1, 1)
        return self.images * std + mean

    def apply_zca(self, zca: "ZCA") -> "RealData":
        """The raw pixels whitened with ``zca``; normalisation becomes the identity (mean 0, std 1), so a set made
        from the result records the pipeline x = pixels/255, then ZCA, as MTT and DATM use."""
        channels = self.images.shape[1]
        return replace(self, images=zca(self.pixels()), zca=zca, mean=(0.0,) * channels, std=(1.0,) * channels)

    def whitened(self, eps: float = 0.1) -> "RealData":
        """ZCA-whitened data, the transform fitted on the raw [0, 1] pixels as MTT/DATM fit kornia's ZCAWhitening
        (eps 0.1, unbiased covariance), not on normalised images (fitting there is ~25x weaker regularisation at
        the same eps on MNIST and changes the input scale the published image learning rates assume)."""
        from ..augment.zca import ZCA

        return self.apply_zca(ZCA.fit(self.pixels(), eps))

    def sample_balanced(self, per_class: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices and labels of ``per_class`` distinct images from every class, grouped by class."""
        self.check_ipc(per_class)
        idx = self.sample_every_class(per_class, generator)
        return idx, self.labels[idx]


def real_data(dataset, split: str = "train", device: str | torch.device = "cpu", mean=None, std=None) -> RealData:
    """A split of an :class:`ImageDataset` as :class:`RealData`, normalised with its own (or given) statistics."""
    pixels, labels = (dataset.train_images, dataset.train_labels) if split == "train" else (dataset.test_images, dataset.test_labels)
    return RealData.from_pixels(
        pixels, labels, dataset.num_classes, mean or dataset.mean, std or dataset.std, device, dataset.name, dataset.class_names
    )
