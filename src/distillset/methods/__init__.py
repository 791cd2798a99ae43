"""Methods that produce a SynSet from RealData: coreset selection now, condensation methods later."""

from .coresets import NEEDS_FEATURES, SELECTORS, herding, ipc_for_ratio, k_center, make_coreset, most_forgotten, select_random

__all__ = ["NEEDS_FEATURES", "SELECTORS", "herding", "ipc_for_ratio", "k_center", "make_coreset", "most_forgotten", "select_random"]
