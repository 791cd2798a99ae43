"""Methods that produce a SynSet from RealData: coreset selection now, condensation methods later."""

from .coresets import SELECTORS, make_coreset, select_random

__all__ = ["SELECTORS", "make_coreset", "select_random"]
