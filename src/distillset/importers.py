"""Reading the sets other tools publish, so they can be evaluated and scored here beside ours.

- ``dc``: the official DC/DSA/DM code's ``res_*.pt``: ``{'data': [[images, labels], ...], ...}``, one pair per
  experiment (``index`` picks one); images normalised with the dataset's mean/std (the same constants as ours).
- ``mtt`` / ``datm``: ``images_*.pt`` (a tensor [N, C, H, W]), optionally ``labels_*.pt`` (int64 [N], or DATM's
  learned soft labels float [N, K], logits) and ``lr_*.pt`` (the learned step size). Without a labels file the
  labels are MTT's: ipc images of class 0, then class 1, ... With ``zca`` the images are ZCA-whitened raw
  pixels (MTT/DATM ``--zca``: kornia's ZCAWhitening, eps 0.1, fitted on the training split), and our ZCA of
  the dataset (the same definition) is attached, so test images are whitened alike.
- ``ddranking``: an image tensor file and a label tensor file (int64 [N] or soft float [N, K]).
- ``gcond``: a condensed graph of GCond's repository (``saved_ours/feat_<data>_<r>_<seed>.pt`` [n, F] and the
  matching ``adj_*.pt`` [n, n], the structure generator's weighted output). GCond saves no labels: its nodes
  follow ``generate_labels_syn``'s layout (:func:`distillset.graph.gcond.gcond_class_order`), rebuilt here from
  the dataset's training labels at the reduction that gives the file's node count.

Loading never executes code: ``torch.load(weights_only=True)`` accepts tensors and plain containers only, so a
file carrying a pickled object (which would run code on load) is refused in one line. The images are checked
against the dataset (shape, finite values, normalised space), the labels against its classes, and the
result records where it came from (tool, file name, SHA-256).
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import torch

from .catalogue import get_method
from .data import load_dataset, real_data
from .errors import DistillsetError
from .synset import SynSet

SOURCES = ("dc", "mtt", "datm", "ddranking", "gcond")


def load_tensors(path: str | Path, what: str):
    """The content of a torch file, tensors and plain containers only; anything else is refused, unexecuted."""
    path = Path(path)
    if not path.is_file():
        raise DistillsetError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise DistillsetError(f"{what} {path} holds objects other than tensors, which would run code when loaded; PyTorch's "
                              "weights-only loader refused it and nothing was executed") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DistillsetError(f"{what} {path} is not a readable torch file ({first[:160]})") from None


def import_set(path: str | Path, source: str, dataset: str, *, labels_file: str | None = None, lr_file: str | None = None,
               index: int = 0, method: str | None = None, zca: bool = False, adjacency_file: str | None = None,
               data_root=None):
    """A SynSet (a graph SynSet for ``gcond``) from another tool's files (see the module docstring)."""
    if source not in SOURCES:
        raise DistillsetError(f"unknown source '{source}'; use one of {', '.join(SOURCES)}")
    if source == "gcond":
        return import_gcond_graph(path, dataset, adjacency_file=adjacency_file, data_root=data_root)
    data = load_dataset(dataset, data_root=data_root)
    images, labels, soft, lr = _read(Path(path), source, index, labels_file, lr_file)
    images = _check_images(images, data.shape, path, zca)
    k = data.num_classes
    if labels is None:
        if images.shape[0] % k:
            raise DistillsetError(f"{path} holds {images.shape[0]} images, not a multiple of {k} classes; give --labels")
        labels = torch.arange(k).repeat_interleave(images.shape[0] // k)
    labels, soft = _check_labels(labels, soft, images.shape[0], k, path)
    method = method or ("dc" if source == "dc" else source if source != "ddranking" else "random")
    try:
        evaluation = get_method(method, "image").evaluation.as_dict()
    except DistillsetError:
        raise DistillsetError(f"--method {method} is not an image method of this library; name the method that made "
                              "the set (dc, dsa, dm, mtt, datm, ...)") from None
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    config = {"imported_from": source, "file": Path(path).name, "sha256": digest, "method": method, "evaluation": evaluation}
    real = real_data(data, "train")
    if zca:
        real = real.whitened()
    ipc = int(torch.bincount(labels, minlength=k).max())
    return SynSet.from_real(real, images, labels, method=method, ipc=ipc, config=config, soft_labels=soft,
                            lr=lr).validate(str(path))


def _read(path: Path, source: str, index: int, labels_file: str | None, lr_file: str | None):
    """(images, labels or None, soft labels or None, lr or None) as the tool stores them."""
    soft = lr = labels = None
    if source == "dc":
        content = load_tensors(path, "DC result file")
        pairs = content.get("data") if isinstance(content, dict) else None
        if not isinstance(pairs, (list, tuple)) or not pairs:
            raise DistillsetError(f"{path} has no 'data' list of [images, labels] pairs: it is not a DC/DSA/DM res_*.pt file")
        if not 0 <= index < len(pairs):
            raise DistillsetError(f"--index {index} is outside the {len(pairs)} experiment(s) in {path}")
        pair = pairs[index]
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise DistillsetError(f"{path}: data[{index}] is not an [images, labels] pair")
        images, labels = pair
    else:
        images = load_tensors(path, "image file")
        if labels_file:
            labels = load_tensors(labels_file, "labels file")
        if lr_file:
            lr = load_tensors(lr_file, "lr file")
            if not isinstance(lr, torch.Tensor) or lr.numel() != 1 or not torch.isfinite(lr).all() or float(lr) <= 0:
                raise DistillsetError(f"lr file {lr_file} must hold one positive number")
            lr = lr.detach().reshape(()).to(torch.float32)
    if not isinstance(images, torch.Tensor):
        raise DistillsetError(f"{path}: the images are a {type(images).__name__}, not a tensor")
    if labels is not None and not isinstance(labels, torch.Tensor):
        raise DistillsetError(f"the labels are a {type(labels).__name__}, not a tensor")
    if labels is not None and labels.is_floating_point() and labels.dim() == 2:
        soft, labels = labels.detach().to(torch.float32), labels.argmax(1)
    return images.detach(), labels, soft, lr


def _check_images(images: torch.Tensor, shape: tuple, path, zca: bool) -> torch.Tensor:
    if images.dim() != 4 or tuple(images.shape[1:]) != tuple(shape):
        raise DistillsetError(f"{path}: images of shape {list(images.shape)} do not fit the dataset's [N, {', '.join(map(str, shape))}]")
    if images.shape[0] == 0:
        raise DistillsetError(f"{path} holds no images")
    images = images.to(torch.float32)
    if not torch.isfinite(images).all():
        raise DistillsetError(f"{path}: the images contain NaN or infinite values")
    low, high = float(images.min()), float(images.max())
    if not zca and low >= 0 and high <= 1:
        raise DistillsetError(f"{path}: every value lies in [0, 1]: these look like raw pixels, but the tool stores "
                              "mean/std-normalised images; normalise them (or import the tool's own file)")
    if max(abs(low), abs(high)) > 1e3:
        raise DistillsetError(f"{path}: values up to {max(abs(low), abs(high)):.3g} are not normalised images")
    return images.contiguous()


def _check_labels(labels: torch.Tensor, soft, n: int, k: int, path):
    if labels.dim() != 1 or labels.numel() != n or labels.is_floating_point():
        raise DistillsetError(f"labels must be whole numbers [N={n}], got {labels.dtype} {list(labels.shape)}")
    labels = labels.to(torch.int64)
    if int(labels.min()) < 0 or int(labels.max()) >= k:
        raise DistillsetError(f"labels span {int(labels.min())}..{int(labels.max())}, outside the dataset's classes 0..{k - 1}")
    if soft is not None and (tuple(soft.shape) != (n, k) or not torch.isfinite(soft).all()):
        raise DistillsetError(f"soft labels must be finite [{n}, {k}], got {list(soft.shape)}")
    return labels, soft


def import_gcond_graph(path: str | Path, dataset: str, *, adjacency_file: str | None = None, data_root=None):
    """A graph SynSet from GCond's saved ``feat_*.pt`` (``path``) and ``adj_*.pt`` (default: the same name with
    ``adj_`` for ``feat_``). The reduction is the node count over the training nodes; the labels are GCond's
    layout at that reduction (its last class takes what the others leave, so any count from one node per class
    to the training set's size has exactly one layout)."""
    from .graph.data import load_graph
    from .graph.gcond import gcond_class_order
    from .graph.synset import GraphSynSet

    path = Path(path)
    if adjacency_file is None:
        if not path.name.startswith("feat_"):
            raise DistillsetError(f"{path} is not named feat_*.pt; give the adjacency file with --adjacency")
        adjacency_file = str(path.with_name("adj_" + path.name[len("feat_"):]))
    features, adjacency = load_tensors(path, "GCond feature file"), load_tensors(adjacency_file, "GCond adjacency file")
    for name, tensor in (("features", features), ("adjacency", adjacency)):
        if not isinstance(tensor, torch.Tensor) or tensor.dim() != 2 or not tensor.is_floating_point():
            raise DistillsetError(f"GCond {name} must be a float matrix, got {type(tensor).__name__} "
                                  f"{list(getattr(tensor, 'shape', []))}")
    data = load_graph(dataset, data_root=data_root)
    n = features.shape[0]
    if features.shape[1] != data.features.shape[1]:
        raise DistillsetError(f"{path}: {features.shape[1]} features per node but {dataset} has {data.features.shape[1]}")
    if tuple(adjacency.shape) != (n, n):
        raise DistillsetError(f"{adjacency_file}: adjacency {list(adjacency.shape)} does not fit {n} nodes of {path.name}")
    n_train = int(data.train.numel())
    if not data.num_classes <= n <= n_train:
        raise DistillsetError(f"{path}: {n} nodes do not fit GCond's layout for {dataset} (one node per class at least, "
                              f"{n_train} training nodes at most)")
    layout = gcond_class_order(data, n / n_train)  # the last class takes the rest, so the layout holds n nodes
    labels = torch.cat([torch.full((count,), c, dtype=torch.int64) for c, count in layout])
    adjacency = adjacency.detach().to(torch.float32)
    digest = {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in (path, adjacency_file)}
    config = {"imported_from": "gcond", "files": [Path(p).name for p in digest], "sha256": list(digest.values()),
              "label_layout": "GCond generate_labels_syn"}
    return GraphSynSet(features.detach().to(torch.float32).contiguous(), adjacency.contiguous(), labels, dataset,
                       data.num_classes, "gcond", n / n_train, config).validate(str(path))
