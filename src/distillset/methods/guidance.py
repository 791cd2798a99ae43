"""Pre-trained-model guidance ("Can pre-trained models assist in dataset distillation?", Lu et al. 2023).

A pool of networks trained on the real data (different seeds, architectures, and checkpoints from
different epochs) classifies the synthetic images; their cross-entropy, weighted, is added to the
distillation loss of DC/DSA/DM. The paper reports that diverse pools and sub-optimal (early)
checkpoints help more than one fully trained model.

Pool folder (``distillset train-pool``): ``index.json`` (format ``distillset.pool/1``: dataset, input
shape, classes, and per member its file, model, seed, epoch and test accuracy) and one safetensors
state dict per member. A guide specification is a comma-separated list of pool folders, optionally
filtered (``runs/pool:model=convnet|lenet;epoch=2``: ';' between keys, '|' between values), or member
files inside a pool folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import DistillsetError
from ..fileio import atomic_write, atomic_write_json, read_index
from ..models import build_model, check_model_name
from ..seeding import make_generator

POOL_FORMAT = "distillset.pool/1"
INDEX = "index.json"


@dataclass
class PoolConfig:
    models: list[str] = field(default_factory=lambda: ["convnet"])
    seeds: list[int] = field(default_factory=lambda: [0])
    epochs: list[int] = field(default_factory=lambda: [1, 5])  # checkpoints kept (the last one is the training length)
    lr: float = 0.01
    batch_size: int = 256


def member_file(model: str, seed: int, epoch: int) -> str:
    return f"{model}-s{seed}-e{epoch}.safetensors"


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
        self.members = [self._load(entry, dataset, shape, num_classes, device) for entry in _resolve(spec)]
        if not self.members:
            raise DistillsetError(f"--guide-models {spec} selects no pool member")
        self.description = [m[0] for m in self.members]

    @staticmethod
    def _load(entry: tuple[Path, dict], dataset, shape, num_classes, device):
        from ..synset import read_safetensors

        folder, member = entry
        index = _read_index(folder)
        if index["dataset"] != dataset or tuple(index["shape"]) != tuple(shape) or index["num_classes"] != num_classes:
            raise DistillsetError(f"pool {folder} was trained on {index['dataset']} {index['shape']}, not {dataset} {list(shape)}")
        net = build_model(member["model"], shape, num_classes, None, device)
        tensors, _ = read_safetensors(folder / member["file"])
        try:
            net.load_state_dict({k: v.to(device) for k, v in tensors.items()})
        except RuntimeError as exc:
            raise DistillsetError(f"pool member {folder / member['file']} does not fit model {member['model']}: "
                                  f"{str(exc).splitlines()[0]}") from None
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        return f"{folder.name}/{member['file']}", net

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
    entries = _resolve(spec)
    if not entries:
        raise DistillsetError(f"pool {spec} selects no member")
    entry = max(entries, key=lambda e: (e[1]["epoch"], -e[1]["seed"]))
    return Guidance._load(entry, dataset, shape, num_classes, device)


def _read_index(folder: Path) -> dict:
    return read_index(folder, INDEX, POOL_FORMAT, "a model pool", "distillset train-pool",
                      required=("dataset", "shape", "num_classes", "members"))


def _resolve(spec: str) -> list[tuple[Path, dict]]:
    """Expand a guide specification into (pool folder, member) pairs."""
    out = []
    for item in [s.strip() for s in spec.split(",") if s.strip()]:
        path_text, _, filters_text = item.partition(":")
        path = Path(path_text)
        if path.suffix == ".safetensors":
            index = _read_index(path.parent)
            member = next((m for m in index["members"] if m["file"] == path.name), None)
            if member is None:
                raise DistillsetError(f"{path} is not listed in {path.parent / INDEX}")
            out.append((path.parent, member))
            continue
        if path.is_file():
            raise DistillsetError(f"guide model pool {path} is a file, not a pool folder; pass the folder "
                                  "`distillset train-pool` wrote, or one member's .safetensors file in it")
        if not path.is_dir():
            raise DistillsetError(f"guide model pool {path} does not exist; make one with `distillset train-pool`")
        index = _read_index(path)
        filters = {}
        for pair in [p for p in filters_text.split(";") if p]:
            key, _, value = pair.partition("=")
            if key not in ("model", "seed", "epoch"):
                raise DistillsetError(f"unknown pool filter '{key}' in '{item}'; use model=, seed= or epoch=")
            filters[key] = {v for v in value.split("|")}
        members = [m for m in index["members"] if all(str(m[k]) in values for k, values in filters.items())]
        if not members:
            raise DistillsetError(f"no member of pool {path} matches '{filters_text}'")
        out += [(path, m) for m in members]
    return out

