"""Published per-(dataset, ipc) settings of the methods whose papers tune them (YAML beside this module).

A method that declares ``presets="NAME"`` in its registration gets ``NAME.yaml``'s entry for the run's
dataset and ipc as its defaults; options the user gives win over them. Each file names its source.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from ..errors import DistillsetError

HERE = Path(__file__).resolve().parent


@cache
def _load(name: str) -> dict:
    import yaml

    path = HERE / f"{name}.yaml"
    if not path.is_file():
        raise DistillsetError(f"no preset file {path.name}")
    return yaml.safe_load(path.read_text()) or {}


def preset_for(name: str, dataset: str, ipc: int) -> dict | None:
    """The published options of ``name`` for ``dataset`` (a class subset counts as its dataset) at ``ipc``, or None."""
    table = _load(name)
    entry = table.get(dataset.split("[")[0])
    if isinstance(entry, dict) and "same_as" in entry:
        entry = table.get(entry["same_as"])
    if not isinstance(entry, dict):
        return None
    options = entry.get(ipc)
    return dict(options) if options is not None else None


def preset_ipcs(name: str, dataset: str) -> list[int]:
    table = _load(name)
    entry = table.get(dataset.split("[")[0]) or {}
    if "same_as" in entry:
        entry = table.get(entry["same_as"]) or {}
    return sorted(k for k in entry if isinstance(k, int))
