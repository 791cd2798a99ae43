"""Published test accuracies (%) that experiment tables print beside ours (from ../shared/PAPERS.md).

Keys: (method, dataset, ipc). ConvNet, the papers' protocols. Absent entries are simply not shown.
"""

from __future__ import annotations

PUBLISHED: dict[tuple[str, str, int], float] = {}


def _add(method: str, dataset: str, values: dict[int, float]) -> None:
    for ipc, acc in values.items():
        PUBLISHED[(method, dataset, ipc)] = acc


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


def published(method: str, dataset: str, ipc: int) -> float | None:
    return PUBLISHED.get((method, dataset, ipc))
