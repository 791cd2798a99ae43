"""The one method registry: every method module registers itself with :func:`register_method`.

As in timm's model registry, the decorators fill a table when their module is imported, and one
catalogue module (:mod:`distillset.catalogue`) imports every method module, so looking a method up
through the catalogue always sees all of them. A name is unique per modality: ``random`` is both an
image and a graph selection method, which the data decides between.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import DistillsetError, unknown_name
from .contract import EvaluationSpec

KINDS = ("condensation", "selection")
MODALITIES = ("image", "graph")


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: what it is, how to configure and build it, how its sets are evaluated.

    ``build(data, config)`` returns the engine (data: RealData for images, GraphData for graphs).
    ``size`` names the config field that sets the set's size (``ipc`` or ``reduction``). ``tiny`` holds
    options that make a seconds-long run on tiny data (the contract test uses them); ``requires`` names
    inputs a run needs beyond the data (``"experts"``: an expert folder as ``experts_dir``). ``presets`` names a
    file of published per-(dataset, ipc) settings in :mod:`distillset.presets` that become the defaults."""

    name: str
    kind: str
    modality: str
    summary: str
    config_class: type
    build: Callable[[Any, Any], Any]
    evaluation: EvaluationSpec = EvaluationSpec()
    size: str = "ipc"
    tiny: dict = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    presets: str | None = None

    def make_config(self, options: dict | None = None, source: str | None = None):
        from .contract import config_from_options

        return config_from_options(self.config_class, dict(options or {}), source or f"--method {self.name}")


_REGISTRY: dict[tuple[str, str], MethodSpec] = {}


def register_method(name: str, *, kind: str, modality: str, summary: str, config: type,
                    evaluation: EvaluationSpec = EvaluationSpec(), size: str = "ipc", tiny: dict | None = None,
                    requires: tuple[str, ...] = (), presets: str | None = None) -> Callable:
    """Class or function decorator: register ``name`` built by the decorated callable ``(data, config) -> engine``."""
    if kind not in KINDS or modality not in MODALITIES:
        raise ValueError(f"method {name}: kind must be one of {KINDS} and modality one of {MODALITIES}")

    def decorate(build: Callable) -> Callable:
        key = (name, modality)
        if key in _REGISTRY:
            raise ValueError(f"method '{name}' ({modality}) is registered twice")
        _REGISTRY[key] = MethodSpec(name, kind, modality, summary, config, build, evaluation, size, dict(tiny or {}), requires,
                                    presets)
        return build

    return decorate


def list_methods(kind: str | None = None, modality: str | None = None) -> list[MethodSpec]:
    """Registered methods (of a kind / modality), condensation first, then by name."""
    specs = [s for s in _REGISTRY.values() if (kind is None or s.kind == kind) and (modality is None or s.modality == modality)]
    return sorted(specs, key=lambda s: (KINDS.index(s.kind), MODALITIES.index(s.modality), s.name))


def get_method(name: str, modality: str | None = None, kind: str | None = None) -> MethodSpec:
    """The method called ``name``; ``modality`` decides between an image and a graph method of that name."""
    matches = [s for s in list_methods(kind, modality) if s.name == name]
    if not matches:
        what = f"{modality + ' ' if modality else ''}{kind or 'method'}"
        raise unknown_name(what.replace("condensation", "condensation method").replace("selection", "selection method"),
                           name, sorted({s.name for s in list_methods(kind, modality)}))
    if len(matches) > 1:
        raise DistillsetError(f"'{name}' is a method for {' and '.join(s.modality for s in matches)} data; the dataset decides which")
    return matches[0]
