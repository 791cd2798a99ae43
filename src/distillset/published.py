"""Published test accuracies (%) that our tables print beside ours (from ../shared/PAPERS.md): one place for
image and graph methods.

Keys: (method, dataset, size), the size being images per class (ints) for image sets, the reduction r
(fraction of the labelled training nodes, floats) for graphs. Images: ConvNet, the papers' protocols;
graphs: a 2-layer GCN, GCond's protocol. Absent entries are simply not shown.
"""

from __future__ import annotations

PUBLISHED: dict[tuple[str, str, float], float] = {}
PUBLISHED_STD: dict[tuple[str, str, float], float] = {}


def _add(method: str, dataset: str, values: dict[float, float], stds: dict[float, float] | None = None) -> None:
    for size, acc in values.items():
        PUBLISHED[(method, dataset, size)] = acc
    for size, std in (stds or {}).items():
        PUBLISHED_STD[(method, dataset, size)] = std


_add("dc", "mnist", {1: 91.7, 10: 97.4, 50: 98.8})
_add("dc", "fashion-mnist", {1: 70.5, 10: 82.3, 50: 83.6})
_add("dc", "svhn", {1: 31.2, 10: 76.1, 50: 82.3})
_add("dc", "cifar10", {1: 28.3, 10: 44.9, 50: 53.9})
_add("dc", "cifar100", {1: 12.8, 10: 25.2})
_add("dsa", "mnist", {1: 88.7, 10: 97.8, 50: 99.2})
_add("dsa", "fashion-mnist", {1: 70.6, 10: 84.6, 50: 88.7})
_add("dsa", "svhn", {1: 27.5, 10: 79.2, 50: 84.4})
_add("dsa", "cifar10", {1: 28.8, 10: 52.1, 50: 60.6})
_add("dsa", "cifar100", {1: 13.9, 10: 32.3})
_add("dm", "cifar10", {1: 26.0, 10: 48.9, 50: 63.0, 500: 75.1, 1000: 78.8})
_add("dm", "cifar100", {1: 11.4, 10: 29.7, 50: 43.6})
_add("random", "cifar10", {1: 15.4, 10: 31.0, 50: 50.6})
# graphs (GCond Table 2, SGDD Table 1, via PAPERS.md): r = 0.25, 0.5, 1
_add("gcond", "cora", {0.25: 79.8}, {0.25: 1.3})
_add("gcond", "citeseer", {0.25: 70.5, 0.5: 70.6, 1.0: 69.8})
_add("sgdd", "citeseer", {0.25: 69.5, 0.5: 70.2, 1.0: 70.3})
_add("random", "citeseer", {0.25: 54.4, 0.5: 64.2, 1.0: 69.1})


def published(method: str, dataset: str, size: float) -> float | None:
    """The published mean accuracy (%) of ``method`` on ``dataset`` at ``size`` (ipc, or reduction for graphs)."""
    return PUBLISHED.get((method, dataset, size))


def published_std(method: str, dataset: str, size: float) -> float | None:
    return PUBLISHED_STD.get((method, dataset, size))
