"""Augmentation: DSA (differentiable siamese augmentation)."""

from .dsa import DEFAULT_STRATEGY, DSA, NO_FLIP_STRATEGY, DSAParams, strategy_for

__all__ = ["DEFAULT_STRATEGY", "DSA", "DSAParams", "NO_FLIP_STRATEGY", "strategy_for"]
