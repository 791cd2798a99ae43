"""Pre-trained-model guidance ("Can pre-trained models assist in dataset distillation?", Lu et al. 2023).

A pool of networks trained on the real data (different seeds, architectures, and checkpoints from
different epochs) classifies the synthetic images; their cross-entropy, weighted, is added to the
distillation loss of DC/DSA/DM. The paper reports that diverse pools and sub-optimal (early)
checkpoints help more than one fully trained model.

Pools are trained here (:func:`train_pool`) and read by :mod:`distillset.pool`, which describes the folder
and the guide specification (pool folders, filters, member files).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import DistillsetError
from ..fileio import atomic_write, atomic_write_json
from ..models import build_model, check_model_name
from ..pool import INDEX, POOL_FORMAT, load_member, load_members, member_file, resolve_pool
from ..seeding import make_generator



@dataclass
class PoolConfig:
    models: list[str] = field(default_factory=lambda: ["convnet"])
    seeds: list[int] = field(default_factory=lambda: [0])
    epochs: list[int] = field(default_factory=lambda: [1, 5])  # checkpoints kept (the last one is the training length)
    lr: float = 0.01
    batch_size: int = 256


def train_pool(dataset: str, out: str | Path, config: PoolConfig, data_root=None, device: str | None = "cpu", log=print) -> dict:
    """Train every (model, seed) on the real training data, keeping the checkpoints at ``config.epochs``.
    Resumable per member: a member whose files are all present is not retrained."""
    from ..data import load_dataset, real_data
    from ..training import TrainConfig, test_accuracy, train_model
    from ..device import resolve_device

    if not config.models or not config.seeds or not config.epochs or min(config.epochs) < 1:
        raise DistillsetError("a pool needs at least one model, one seed and positive checkpoint epochs")
    for name in config.models:
        check_model_name(name)
    torch_device = resolve_device(device)
    data = load_dataset(dataset, data_root=data_root)
    real, test = real_data(data, "train", torch_device), real_data(data, "test", torch_device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / INDEX
    index = json.loads(path.read_text()) if path.is_file() else {"format": POOL_FORMAT, "dataset": real.name,
                                                                  "shape": list(real.shape), "num_classes": real.num_classes,
                                                                  "mean": list(real.mean), "std": list(real.std), "members": []}
    if index.get("dataset") != real.name or index.get("shape") != list(real.shape):
        raise DistillsetError(f"{out} is a pool for {index.get('dataset')} {index.get('shape')}; choose another --out")
    have = {m["file"] for m in index["members"]}
    epochs = sorted(set(config.epochs))
    from safetensors.torch import save_file

    for name in config.models:
        for seed in config.seeds:
            if all(member_file(name, seed, e) in have for e in epochs):
                continue
            net = build_model(name, real.shape, real.num_classes, make_generator(seed, "pool", name, "init"), torch_device)

            def keep(epoch: int, name=name, seed=seed, net=net) -> None:
                if epoch in epochs and member_file(name, seed, epoch) not in have:
                    accuracy = test_accuracy(net, test.images, test.labels)
                    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
                    file = member_file(name, seed, epoch)
                    atomic_write(out / file, lambda tmp, t=tensors: save_file(t, tmp, metadata={"format": POOL_FORMAT}))
                    index["members"].append({"file": file, "model": name, "seed": seed, "epoch": epoch, "test_accuracy": accuracy})
                    have.add(file)
                    atomic_write_json(path, index)
                    log(f"pool member {file}: test accuracy {100 * accuracy:.2f}%")

            # constant lr (no decay): a member at epoch e is the same network whatever the last epoch kept
            train_model(net, real.images, real.labels, TrainConfig(epochs=epochs[-1], lr=config.lr, batch_size=config.batch_size),
                        make_generator(seed, "pool", name, "train"), lr_decay=False, on_epoch=keep)
    return index


class Guidance:
    """The pool's classification loss of synthetic images; members are frozen and in eval mode."""

    def __init__(self, spec: str, dataset: str, shape: tuple[int, int, int], num_classes: int, device, weight: float = 1.0,
                 per_iteration: int = 1) -> None:
        if weight < 0 or per_iteration < 1:
            raise DistillsetError("the guide weight must be non-negative and at least one guide must be used per iteration")
        self.weight, self.per_iteration = weight, per_iteration
        self.members = load_members(spec, dataset, shape, num_classes, device)
        if not self.members:
            raise DistillsetError(f"--guide-models {spec} selects no pool member")
        self.description = [m[0] for m in self.members]

    def loss(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator, total: int | None = None) -> torch.Tensor:
        """Weighted cross-entropy of ``images`` under ``per_iteration`` sampled members (summed over the
        given images and divided by ``total``, so class-sharded ranks add up to the full mean)."""
        picks = torch.randperm(len(self.members), generator=generator)[:self.per_iteration].tolist()
        total = total or images.shape[0]
        out = images.new_zeros(())
        if images.shape[0] == 0:
            return out
        for i in picks:
            out = out + F.cross_entropy(self.members[i][1](images), labels, reduction="sum") / total
        return self.weight * out / len(picks)


def most_trained_member(spec: str, dataset: str, shape: tuple[int, int, int], num_classes: int, device) -> tuple[str, torch.nn.Module]:
    """(name, frozen network) of the most-trained member that ``spec`` selects (most epochs, then the lowest seed):
    a pre-trained network chosen without looking at any test accuracy."""
    entries = resolve_pool(spec)
    if not entries:
        raise DistillsetError(f"pool {spec} selects no member")
    entry = max(entries, key=lambda e: (e[1]["epoch"], -e[1]["seed"]))
    return load_member(entry, dataset, shape, num_classes, device)



