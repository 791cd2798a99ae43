"""The model zoo: one registry, every network exposes ``embed`` (the classifier's input)."""

from .convnet import MLP, ConvNet
from .init import init_parameters
from .registry import MODELS, build_model, check_model_fits, check_model_name, model_names

__all__ = ["MLP", "MODELS", "ConvNet", "build_model", "check_model_fits", "check_model_name", "init_parameters",
           "model_names"]
