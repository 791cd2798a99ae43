"""Choices made on a validation split, never on the test split.

Every peer evaluator leaks the test set somewhere (an lr picked from a grid by test accuracy, the best test
accuracy over epochs or checkpoints). Here anything that chooses (an lr grid, an epoch budget, a distillation
temperature) scores each candidate on a class-balanced, seeded validation split held out from the real
TRAINING split, and the test split is touched once, by the chosen setting. The validation images are real
training images the set may have been distilled from: a fair judge of evaluation settings, not of the set.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from ..errors import DistillsetError
from ..seeding import make_generator


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices (into the training split) of ``fraction`` of every class, at least one each, drawn from the stream
    (seed, 'validation'): the same split for every set evaluated with the same seed."""
    if not 0 < fraction < 1:
        raise DistillsetError(f"--val-fraction must lie strictly between 0 and 1, got {fraction}")
    import torch

    labels = np.asarray(labels)
    generator = make_generator(seed, "validation")
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        take = max(1, int(round(fraction * len(members))))
        order = torch.randperm(len(members), generator=generator).numpy()
        picked.append(members[order[:take]])
    return np.sort(np.concatenate(picked))


def candidates(grids: dict[str, list]) -> list[dict]:
    """Every combination of the given grids (name -> values), in the order given; [{}] when there is none."""
    names = [n for n, values in grids.items() if values]
    return [dict(zip(names, combo)) for combo in itertools.product(*(grids[n] for n in names))]


def choose(options: list[dict], score: Callable[[dict], float]) -> tuple[dict, list[dict]]:
    """The option with the highest validation score (the first of equals; a failed one scores -inf), and every
    option with its score, for the record."""
    scored = []
    for option in options:
        value = score(option)
        scored.append({**option, "validation_accuracy": value})
    best = max(range(len(scored)), key=lambda i: (_finite(scored[i]["validation_accuracy"]), -i))
    return options[best], scored


def _finite(value: float) -> float:
    return value if np.isfinite(value) else -np.inf


def parse_grid(text: str | None, name: str, cast=float) -> list:
    """A comma-separated grid from the command line ('' or None: no grid)."""
    if not text:
        return []
    try:
        values = [cast(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise DistillsetError(f"{name} must be comma-separated numbers, got '{text}'") from None
    if not values or any(not np.isfinite(v) or v <= 0 for v in values):
        raise DistillsetError(f"{name} must hold positive numbers, got '{text}'")
    return values
