"""The one results store of long measurements: experiments, continual learning and the benchmark tables.

A JSON file of cells (key -> cell mapping), rewritten atomically after every change, so a measurement cut
off at any point resumes from what was stored. Cells measured by processes running in parallel (one per
core) are folded together with :meth:`ResultsStore.merge`, which never silently picks one of two different
measurements of the same cell.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import DistillsetError
from .fileio import atomic_write_json


class ResultsStore:
    """Cells of one results file. ``cells`` is the live mapping; :meth:`save` writes it."""

    def __init__(self, path: str | os.PathLike, cells: dict | None = None) -> None:
        self.path = Path(path)
        if cells is not None:
            self.cells = cells
        elif self.path.is_file():
            try:
                self.cells = json.loads(self.path.read_text())
            except ValueError as exc:
                raise DistillsetError(f"{self.path} is not readable JSON ({exc}); restore it or delete it to measure again") from None
        else:
            self.cells = {}

    def __contains__(self, key: str) -> bool:
        return key in self.cells

    def __getitem__(self, key: str) -> Any:
        return self.cells[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.cells.get(key, default)

    def save(self) -> None:
        atomic_write_json(self.path, self.cells)

    def put(self, key: str, cell: Any) -> None:
        """Store one cell and write the file."""
        self.cells[key] = cell
        self.save()

    def put_shared(self, key: str, cell: Any) -> None:
        """Store one cell in a file that other processes write too (one per core, each measuring its own keys).

        Under an exclusive OS lock on ``<file>.lock`` the file is read again, its cells replace this store's
        (so another process's cells written since are kept, and seen here), this key is set to ``cell`` (the
        same object, so a caller that keeps mutating it stays in step) and the file is written. Plain
        :meth:`put` would overwrite the others' cells with the ones read at start. Without ``fcntl``
        (Windows) there is no lock: run one writer at a time there."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - POSIX machines have it
            fcntl = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the handle closes
            self.cells = {**ResultsStore(self.path).cells, key: cell}
            self.save()

    def merge(self, other: Mapping[str, Any], source: str, may_differ: tuple[str, ...] = ()) -> None:
        """Fold ``other``'s cells in (not written; :meth:`merge_files` writes). The same cell measured twice with
        different values is refused; keys ending in one of ``may_differ`` keep the first value seen."""
        merge_cells(self.cells, other, source, may_differ)

    def merge_files(self, files: Iterable[str | os.PathLike], may_differ: tuple[str, ...] = ()) -> None:
        """Fold the cells of other results files (of runs made in parallel) in, and write the result."""
        for file in files:
            self.merge(ResultsStore(file).cells, str(file), may_differ)
        self.save()


def merge_cells(cells: dict, other: Mapping[str, Any], source: str, may_differ: tuple[str, ...] = ()) -> dict:
    """``other``'s cells added to ``cells`` in place (see :meth:`ResultsStore.merge`); returns ``cells``."""
    for key, cell in other.items():
        if key in cells and cells[key] != cell and not key.endswith(may_differ):
            raise DistillsetError(f"{source}: cell {key} differs from the one already in the results; keep one of them")
        cells.setdefault(key, cell)
    return cells
