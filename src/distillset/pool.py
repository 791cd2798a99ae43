"""Model pools on disk (``distillset train-pool``): reading them, for every layer that uses pre-trained networks.

A pool folder holds ``index.json`` (format ``distillset.pool/1``: dataset, input shape, classes, and per member
its file, model, seed, epoch and test accuracy) and one safetensors state dict per member. A pool
specification is a comma-separated list of pool folders, optionally filtered (``runs/pool:model=convnet|lenet;
epoch=2``: ';' between keys, '|' between values), or member files inside a pool folder. Methods use pools as
guides (methods.guidance), the evaluation as teachers (evaluation.teacher); both read them here.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import DistillsetError
from .fileio import read_index
from .models import build_model

POOL_FORMAT = "distillset.pool/1"
INDEX = "index.json"


def member_file(model: str, seed: int, epoch: int) -> str:
    return f"{model}-s{seed}-e{epoch}.safetensors"


def read_pool_index(folder: Path) -> dict:
    return read_index(folder, INDEX, POOL_FORMAT, "a model pool", "distillset train-pool",
                      required=("dataset", "shape", "num_classes", "members"))


def resolve_pool(spec: str) -> list[tuple[Path, dict]]:
    """Expand a guide specification into (pool folder, member) pairs."""
    out = []
    for item in [s.strip() for s in spec.split(",") if s.strip()]:
        path_text, _, filters_text = item.partition(":")
        path = Path(path_text)
        if path.suffix == ".safetensors":
            index = read_pool_index(path.parent)
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
        index = read_pool_index(path)
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


def load_member(entry: tuple[Path, dict], dataset: str, shape, num_classes: int, device) -> tuple[str, torch.nn.Module]:
    """(name, frozen network in eval mode) of one pool member; a pool made for other data is refused."""
    from .synset import read_safetensors

    folder, member = entry
    index = read_pool_index(folder)
    if index["dataset"] != dataset or tuple(index["shape"]) != tuple(shape) or index["num_classes"] != num_classes:
        raise DistillsetError(f"pool {folder} was trained on {index['dataset']} {index['shape']}, not {dataset} {list(shape)}; "
                              f"train a pool on {dataset} with `distillset train-pool --dataset {dataset}`")
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


def load_members(spec: str, dataset: str, shape, num_classes: int, device) -> list[tuple[str, torch.nn.Module]]:
    """Every member ``spec`` selects, loaded (see :func:`load_member`)."""
    return [load_member(entry, dataset, shape, num_classes, device) for entry in resolve_pool(spec)]
