"""The graph SynSet: a small synthetic graph (node features, weighted adjacency, labels) in one
safetensors file, validated on load like the image SynSet (DESIGN.md: same rules, tensors
``features`` [n, F] float32, ``adjacency`` [n, n] float32 symmetric with zero diagonal and weights in
[0, 1], ``labels`` [n] int64). Metadata: format ``distillset.graphsynset/1``, dataset, num_classes,
method, reduction, config (JSON), version."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import DistillsetError
from ..fileio import write_safetensors
from ..synset import _package_version, read_safetensors

GRAPH_FORMAT = "distillset.graphsynset/1"


@dataclass
class GraphSynSet:
    features: torch.Tensor
    adjacency: torch.Tensor
    labels: torch.Tensor
    dataset: str
    num_classes: int
    method: str
    reduction: float
    config: dict = field(default_factory=dict)
    version: str = ""

    def __post_init__(self) -> None:
        if not self.version:
            self.version = _package_version()

    def __len__(self) -> int:
        return int(self.labels.numel())

    def validate(self, source: str = "graph SynSet") -> "GraphSynSet":
        def fail(problem: str) -> DistillsetError:
            return DistillsetError(f"{source}: {problem}")

        x, a, y = self.features, self.adjacency, self.labels
        if x.dtype != torch.float32 or x.dim() != 2:
            raise fail(f"'features' must be float32 [n, F], found {x.dtype} {list(x.shape)}")
        n = x.shape[0]
        if n == 0:
            raise fail("holds no nodes")
        if not 1 <= self.num_classes <= 100_000:
            raise fail(f"num_classes must be between 1 and 100000, found {self.num_classes}")
        if a.dtype != torch.float32 or tuple(a.shape) != (n, n):
            raise fail(f"'adjacency' must be float32 [{n}, {n}], found {a.dtype} {list(a.shape)}")
        if y.dtype != torch.int64 or tuple(y.shape) != (n,):
            raise fail(f"'labels' must be int64 [{n}], found {y.dtype} {list(y.shape)}")
        if not (torch.isfinite(x).all() and torch.isfinite(a).all()):
            raise fail("features or adjacency contain NaN or infinite values")
        if n and (y.min() < 0 or y.max() >= self.num_classes):
            raise fail(f"labels must lie in [0, {self.num_classes})")
        if not torch.allclose(a, a.T, atol=1e-6) or a.diagonal().abs().max() > 0 or a.min() < 0 or a.max() > 1:
            raise fail("'adjacency' must be symmetric, with a zero diagonal and weights in [0, 1]")
        return self

    def save(self, path: str | os.PathLike) -> Path:
        self.validate()
        tensors = {k: getattr(self, k).detach().cpu().contiguous() for k in ("features", "adjacency", "labels")}
        meta = {"format": GRAPH_FORMAT, "dataset": self.dataset, "num_classes": str(self.num_classes), "method": self.method,
                "reduction": repr(float(self.reduction)), "config": json.dumps(self.config, sort_keys=True, default=str),
                "version": self.version}
        return write_safetensors(path, tensors, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GraphSynSet":
        tensors, meta = read_safetensors(path)
        if meta.get("format") != GRAPH_FORMAT:
            raise DistillsetError(f"{path} is not a graph SynSet (format {meta.get('format')!r}, expected {GRAPH_FORMAT!r})")
        missing = [k for k in ("features", "adjacency", "labels") if k not in tensors]
        if missing:
            raise DistillsetError(f"{path}: tensor(s) {', '.join(missing)} missing")
        try:
            synset = cls(tensors["features"], tensors["adjacency"], tensors["labels"], meta["dataset"], int(meta["num_classes"]),
                         meta["method"], float(meta["reduction"]), json.loads(meta.get("config", "{}")), meta.get("version", ""))
        except (KeyError, ValueError) as exc:
            raise DistillsetError(f"{path}: malformed metadata ({exc})") from None
        return synset.validate(str(path))
