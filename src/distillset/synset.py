"""The SynSet: a synthetic (or selected) training set and its safetensors file (DESIGN.md contract).

Tensors: ``images`` float32 [N, C, H, W] in model-input space, ``labels`` int64 [N], optional
``soft_labels`` float32 [N, K] (logits), ``lr`` float32 scalar, ``zca_mean`` [D] and ``zca_matrix`` [D, D].
Metadata: ``format``, ``dataset``, ``num_classes``, ``mean``, ``std``, ``method``, ``ipc``, ``config``,
``version``. Loading never executes code (safetensors has no pickle) and validates everything.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ._version import __version__
from .errors import DistillsetError
from .fileio import write_safetensors

FORMAT = "distillset.synset/1"
MAX_CLASSES = 100_000  # a bound on metadata that sizes allocations (grids, soft labels) before anything is drawn
MIN_STD = 1e-6  # normalisation divides by std: below this every test pixel becomes huge or infinite
REQUIRED_METADATA = ("format", "dataset", "num_classes", "mean", "std", "method", "ipc", "config", "version")
_OPTIONAL_TENSORS = ("soft_labels", "lr", "zca_mean", "zca_matrix")


def _package_version() -> str:
    return __version__


@dataclass
class SynSet:
    """A condensed training set plus everything needed to train on it and to prepare test data."""

    images: torch.Tensor
    labels: torch.Tensor
    dataset: str
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    method: str
    ipc: int
    config: dict = field(default_factory=dict)
    soft_labels: torch.Tensor | None = None
    lr: torch.Tensor | None = None
    zca_mean: torch.Tensor | None = None
    zca_matrix: torch.Tensor | None = None
    class_names: list[str] | None = None
    version: str = ""

    def __post_init__(self) -> None:
        self.mean = tuple(float(m) for m in self.mean)
        self.std = tuple(float(s) for s in self.std)
        if not self.version:
            self.version = _package_version()

    @classmethod
    def from_real(cls, real, images: torch.Tensor, labels: torch.Tensor, *, method: str, ipc: int, config: dict | None = None,
                  soft_labels: torch.Tensor | None = None, lr: torch.Tensor | None = None) -> "SynSet":
        """A set made from ``real`` (a RealData): its dataset, classes, normalisation, class names and ZCA
        transform carried over, tensors copied to the CPU. Every method builds its SynSet here, so none
        forgets the whitening its images live in."""
        zca = getattr(real, "zca", None)
        return cls(images.detach().cpu().clone(), labels.detach().cpu().clone(), real.name, real.num_classes, real.mean, real.std,
                   method, ipc, config=dict(config or {}), soft_labels=None if soft_labels is None else soft_labels.detach().cpu().clone(),
                   lr=None if lr is None else lr.detach().cpu().reshape(()).clone(), class_names=real.class_names,
                   zca_mean=zca.mean.cpu() if zca is not None else None, zca_matrix=zca.matrix.cpu() if zca is not None else None)

    # ------------------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to(self, device: str | torch.device) -> "SynSet":
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return SynSet(**moved)

    def validate(self, source: str = "SynSet") -> "SynSet":
        """Check shapes, dtypes, finiteness and label range; raise one clear error naming the problem."""
        def fail(problem: str) -> DistillsetError:
            return DistillsetError(f"{source}: {problem}")

        x, y = self.images, self.labels
        if x.dtype != torch.float32 or x.dim() != 4:
            raise fail(f"'images' must be float32 [N, C, H, W], found {str(x.dtype).replace('torch.', '')} {list(x.shape)}")
        if y.dtype != torch.int64 or y.dim() != 1 or y.shape[0] != x.shape[0]:
            raise fail(f"'labels' must be int64 [N] with N = {x.shape[0]}, found {str(y.dtype).replace('torch.', '')} {list(y.shape)}")
        if x.shape[0] == 0:
            raise fail("holds no images")
        if not 1 <= self.num_classes <= MAX_CLASSES:
            raise fail(f"num_classes must be between 1 and {MAX_CLASSES}, found {self.num_classes}")
        if not torch.isfinite(x).all():
            raise fail(f"'images' contain {int((~torch.isfinite(x)).sum())} NaN or infinite values")
        if int(y.min()) < 0 or int(y.max()) >= self.num_classes:
            raise fail(f"labels span {int(y.min())}..{int(y.max())}, outside 0..{self.num_classes - 1}")
        if len(self.mean) not in (1, x.shape[1]) or len(self.std) != len(self.mean):
            raise fail(f"mean/std have {len(self.mean)}/{len(self.std)} entries for {x.shape[1]}-channel images")
        if not all(math.isfinite(v) for v in (*self.mean, *self.std)):
            raise fail(f"mean/std must be finite numbers, found mean {list(self.mean)}, std {list(self.std)}")
        if any(s < MIN_STD for s in self.std):
            raise fail(f"std entries must be at least {MIN_STD:g} (pixels are divided by them), found {list(self.std)}")
        if self.class_names is not None and (not isinstance(self.class_names, (list, tuple))
                                             or len(self.class_names) != self.num_classes
                                             or not all(isinstance(n, str) for n in self.class_names)):
            raise fail(f"class_names must be a list of {self.num_classes} strings")
        if self.soft_labels is not None:
            s = self.soft_labels
            if s.dtype != torch.float32 or tuple(s.shape) != (x.shape[0], self.num_classes):
                raise fail(f"'soft_labels' must be float32 [{x.shape[0]}, {self.num_classes}], found {list(s.shape)}")
            if not torch.isfinite(s).all():
                raise fail("'soft_labels' contain NaN or infinite values")
        if self.lr is not None:
            if self.lr.dtype != torch.float32 or self.lr.numel() != 1 or self.lr.dim() > 1:
                raise fail(f"'lr' must be a float32 scalar, found shape {list(self.lr.shape)}")
            if not torch.isfinite(self.lr).all() or float(self.lr) <= 0:
                raise fail(f"'lr' must be a positive finite number, found {float(self.lr)}")
        if (self.zca_mean is None) != (self.zca_matrix is None):
            raise fail("has only one of 'zca_mean' and 'zca_matrix'; ZCA needs both")
        if self.zca_mean is not None:
            d = x[0].numel()
            if tuple(self.zca_mean.shape) != (d,) or tuple(self.zca_matrix.shape) != (d, d):
                raise fail(f"ZCA tensors must be [{d}] and [{d}, {d}], found {list(self.zca_mean.shape)} and {list(self.zca_matrix.shape)}")
            if self.zca_mean.dtype != torch.float32 or self.zca_matrix.dtype != torch.float32:
                raise fail("ZCA tensors must be float32")
            if not (torch.isfinite(self.zca_mean).all() and torch.isfinite(self.zca_matrix).all()):
                raise fail("ZCA tensors contain NaN or infinite values")
        return self

    # ------------------------------------------------------------------------------------- I/O
    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"images": self.images, "labels": self.labels}
        for name in _OPTIONAL_TENSORS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value.reshape(()) if name == "lr" else value
        return {k: v.detach().to("cpu").contiguous() for k, v in sorted(out.items())}

    def metadata(self) -> dict[str, str]:
        meta = {
            "format": FORMAT,
            "dataset": self.dataset,
            "num_classes": str(self.num_classes),
            "mean": json.dumps(list(self.mean)),
            "std": json.dumps(list(self.std)),
            "method": self.method,
            "ipc": str(self.ipc),
            "config": json.dumps(self.config, sort_keys=True, default=str),
            "version": self.version,
        }
        if self.class_names is not None:
            meta["class_names"] = json.dumps(list(self.class_names))
        return dict(sorted(meta.items()))  # one byte order for one content

    def save(self, path: str | os.PathLike) -> Path:
        """Validate, then write atomically (a temp file renamed into place)."""
        self.validate()
        return write_safetensors(path, self.tensors(), self.metadata())

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "SynSet":
        """Read and fully validate a SynSet file; any problem is one DistillsetError naming it."""
        tensors, meta = read_safetensors(path)
        source = str(path)
        if meta.get("format") != FORMAT:
            if "features" in tensors and "adjacency" in tensors:
                raise DistillsetError(f"{source} is a graph SynSet (features/adjacency); use the graph commands for it")
            raise DistillsetError(f"{source} is not a distillset SynSet: metadata 'format' is {meta.get('format')!r}, expected {FORMAT!r}")
        missing = [k for k in REQUIRED_METADATA if k not in meta]
        if missing:
            raise DistillsetError(f"{source}: metadata lacks {', '.join(missing)}")
        for name in ("images", "labels"):
            if name not in tensors:
                raise DistillsetError(f"{source}: tensor '{name}' is missing")
        try:
            num_classes = int(meta["num_classes"])
            ipc = int(meta["ipc"])
            mean = [float(v) for v in json.loads(meta["mean"])]
            std = [float(v) for v in json.loads(meta["std"])]
            config = json.loads(meta["config"])
            class_names = json.loads(meta["class_names"]) if "class_names" in meta else None
        except (ValueError, TypeError) as exc:
            raise DistillsetError(f"{source}: malformed metadata ({exc})") from None
        unknown = set(tensors) - {"images", "labels", *_OPTIONAL_TENSORS}
        if unknown:
            raise DistillsetError(f"{source}: unexpected tensor(s) {', '.join(sorted(unknown))}")
        synset = cls(
            images=tensors["images"], labels=tensors["labels"], dataset=meta["dataset"], num_classes=num_classes,
            mean=tuple(mean), std=tuple(std), method=meta["method"], ipc=ipc, config=config,
            soft_labels=tensors.get("soft_labels"), lr=tensors.get("lr"), zca_mean=tensors.get("zca_mean"),
            zca_matrix=tensors.get("zca_matrix"), class_names=class_names, version=meta["version"],
        )
        return synset.validate(source).to(device)


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, with missing/corrupt files reported in one line."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise DistillsetError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # safetensors raises its own SafetensorError and OSError/ValueError variants
        raise DistillsetError(f"{path} is not a readable safetensors file (truncated or corrupt: {exc})") from None
    return tensors, meta
