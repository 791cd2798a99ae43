"""Methods that produce a SynSet from real data: each module registers its methods (methods.registry) under the
one contract of methods.contract. Look methods up through :mod:`distillset.catalogue`, which imports them all."""

from .coresets import herding, k_center, most_forgotten
from .selection import ipc_for_ratio

__all__ = ["herding", "ipc_for_ratio", "k_center", "most_forgotten"]
