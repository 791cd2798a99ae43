"""The one contract every method follows, image or graph, condensation or selection.

In the spirit of scikit-learn's estimator contract, a method is:

* a **config dataclass** whose fields carry their constraints (``option(default, low=..., choices=...)``),
  checked at the boundary by :func:`check_config` with one message shape that names the option;
* an **engine** built from ``(data, config)``, which validates everything it can there (before any work),
  and offers ``initial_state()``, ``step(state) -> loss`` (one iteration, epoch or selection; the loss is
  what the driver reports) and ``to_synset(state)``; ``total_steps`` says how many steps make a run;
* a **state**: named tensors + ``iteration`` + ``losses`` (:class:`State`), so one checkpoint format
  (:mod:`distillset.runner`) serves every method; ``engine.restore(tensors, iteration, losses)`` rebuilds
  it, and every random draw of step i derives from (seed, i), so a restored run continues exactly as the
  uninterrupted one would;
* a declaration of the **evaluation** its sets need (:class:`EvaluationSpec`: augmentation, epochs, soft
  labels), so nothing downstream tests method names.

Engines raise ``FloatingPointError`` when a loss stops being finite; the driver turns that into one line
with the engine's ``divergence_hint``.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import Field, dataclass, field, fields
from typing import Any, Protocol, runtime_checkable

import torch

from ..errors import DistillsetError


def option(default: Any, help: str = "", *, low: float | None = None, high: float | None = None,
           low_open: bool = False, choices: tuple | None = None) -> Any:
    """A config field with its constraints declared beside it.

    ``low``/``high`` bound numbers (``low_open``: strictly above ``low``); ``choices`` lists the allowed
    values. The type is the field's annotation (``int | None`` allows None)."""
    return field(default=default, metadata={"help": help, "low": low, "high": high, "low_open": low_open, "choices": choices})


def _allowed_types(annotation: Any) -> tuple[tuple[type, ...], bool]:
    """The plain types an annotation admits, and whether None is one of them."""
    args = typing.get_args(annotation)
    members = args if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (annotation,)
    optional = type(None) in members
    plain = tuple(m for m in members if m is not type(None) and isinstance(m, type))
    return plain, optional


def _describe(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types)


def coerce_option(name: str, value: Any, annotation: Any, source: str) -> Any:
    """``value`` as the annotated type (an int where a float is wanted becomes a float); refuse anything else."""
    types, optional = _allowed_types(annotation)
    if value is None:
        if optional:
            return None
        raise DistillsetError(f"{source}: option '{name}' must be {_describe(types)}, got null")
    if isinstance(value, bool):
        if bool in types:
            return value
    elif float in types and isinstance(value, (int, float)):
        return float(value)
    elif any(isinstance(value, t) for t in types):
        return value
    raise DistillsetError(f"{source}: option '{name}' must be {_describe(types)}, got {value!r}")


def check_value(name: str, value: Any, meta: dict, source: str) -> None:
    """Range and choices of one option (type already checked)."""
    if value is None or not meta:
        return
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise DistillsetError(f"{source}: option '{name}' must be one of {', '.join(map(str, choices))}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise DistillsetError(f"{source}: option '{name}' must be a finite number, got {value!r}")
        low, high = meta.get("low"), meta.get("high")
        if low is not None and (value <= low if meta.get("low_open") else value < low):
            raise DistillsetError(f"{source}: option '{name}' must be {'>' if meta.get('low_open') else '>='} {low:g}, got {value!r}")
        if high is not None and value > high:
            raise DistillsetError(f"{source}: option '{name}' must be <= {high:g}, got {value!r}")


def check_config(config: Any, source: str | None = None) -> Any:
    """Validate every field of a config dataclass against its annotation and declared constraints, in place."""
    source = source or type(config).__name__
    hints = typing.get_type_hints(type(config))
    for f in fields(config):
        value = coerce_option(f.name, getattr(config, f.name), hints[f.name], source)
        check_value(f.name, value, dict(f.metadata or {}), source)
        setattr(config, f.name, value)
    return config


def config_from_options(config_class: type, options: dict, source: str) -> Any:
    """A validated ``config_class`` from a mapping of option names; unknown names are refused with the known ones."""
    known = {f.name for f in fields(config_class)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise DistillsetError(f"{source}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    hints = typing.get_type_hints(config_class)
    coerced = {k: coerce_option(k, v, hints[k], source) for k, v in options.items()}
    return check_config(config_class(**coerced), source)


def constrained_fields(config_class: type) -> list[Field]:
    """Fields with a declared range or choices (the contract test pushes one out of range)."""
    return [f for f in fields(config_class) if f.metadata and (f.metadata.get("low") is not None or f.metadata.get("choices"))]


@dataclass(frozen=True)
class EvaluationSpec:
    """How a method's sets are evaluated by default: its paper's protocol, recorded in every set it makes.

    ``augment``: "none", "dsa" (DSA's transforms, as the DSA/DM/MTT/DATM papers train their evaluation
    networks) or "dc" (the DC code's choice per dataset and model: crop/scale/rotate on MNIST, crop/noise for a
    BatchNorm ConvNet, none otherwise; :func:`distillset.augment.make_augment`); ``epochs``: None = the
    protocol's default (1000 when an augmentation applies, else 300); ``soft_labels``: train on the set's
    stored soft labels when it has them; ``batch_size`` of the training minibatches."""

    augment: str = "none"
    epochs: int | None = None
    soft_labels: bool = True
    batch_size: int = 256

    def as_dict(self) -> dict:
        return {"augment": self.augment, "epochs": self.epochs, "soft_labels": self.soft_labels, "batch_size": self.batch_size}


@runtime_checkable
class MethodState(Protocol):
    """What the driver checkpoints: named tensors, the next step's index, the losses so far."""

    iteration: int
    losses: list[float]

    def named_tensors(self) -> dict[str, torch.Tensor]: ...


@dataclass
class State:
    """A state that is just named tensors (selection and graph methods)."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    iteration: int = 0
    losses: list[float] = field(default_factory=list)

    def named_tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.tensors)


class OneStepSelection:
    """What every selection engine shares, image or graph: one step makes the selection, and the state is just
    named tensors (:class:`State`). Subclasses set ``name`` and implement ``step`` and ``to_synset``."""

    name: str
    total_steps = 1
    divergence_hint = "a selection has no loss to diverge"

    def initial_state(self) -> State:
        return State()

    def restore(self, tensors: dict[str, torch.Tensor], iteration: int, losses: list[float]) -> State:
        return State(dict(tensors), iteration, list(losses))

    @staticmethod
    def record(state: State, tensors: dict[str, torch.Tensor]) -> float:
        """Store the selection in ``state`` as the step's result (loss 0)."""
        state.tensors = tensors
        state.iteration += 1
        state.losses.append(0.0)
        return 0.0


class Engine(Protocol):
    """The engine side of the contract (see the module docstring)."""

    config: Any
    total_steps: int
    divergence_hint: str

    def initial_state(self) -> MethodState: ...

    def step(self, state: MethodState) -> float: ...

    def restore(self, tensors: dict[str, torch.Tensor], iteration: int, losses: list[float]) -> MethodState: ...

    def to_synset(self, state: MethodState): ...
