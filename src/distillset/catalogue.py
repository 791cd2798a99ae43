"""The catalogue: imports every method module so that the registry holds them all, and hands out its lookups.

Adding a method: write one module with a config dataclass (constraints per field, methods.contract), an
engine (``initial_state``, ``step``, ``restore``, ``to_synset``, ``total_steps``) and a ``@register_method``
decorator; add its import below. The command line, ``distillset methods``, the drivers and the contract test
(tests/test_method_contract.py) then know it without further code.
"""

from __future__ import annotations

from .graph import coresets as _graph_coresets  # noqa: F401
from .graph import gcond as _gcond  # noqa: F401
from .graph import sgdd as _sgdd  # noqa: F401
from .graph import sgdd_led as _sgdd_led  # noqa: F401
from .methods import coresets as _coresets  # noqa: F401
from .methods import dataset_distillation as _dd  # noqa: F401
from .methods import distribution_matching as _dm  # noqa: F401
from .methods import gradient_matching as _dc  # noqa: F401
from .methods import quantization as _dq  # noqa: F401
from .methods import trajectory_matching as _tm  # noqa: F401
from .methods.registry import MethodSpec, get_method, list_methods

__all__ = ["MethodSpec", "get_method", "list_methods", "describe_methods"]


def describe_methods() -> str:
    """One line per registered method: name, kind, modality, summary (``distillset methods``)."""
    specs = list_methods()
    width = max(len(s.name) for s in specs)
    return "\n".join(f"{s.name:<{width}}  {s.kind:<12}  {s.modality:<5}  {s.summary}" for s in specs)
