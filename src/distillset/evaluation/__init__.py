"""Evaluation: the paper protocol (fresh models trained on a SynSet, tested once on real data)."""

from ..training import TrainConfig, test_accuracy, train_model
from .files import evaluate_file
from .protocol import EvalResults, ModelResult, each_run, evaluate_synset, format_table, prepare_test_data

__all__ = ["EvalResults", "ModelResult", "TrainConfig", "each_run", "evaluate_file", "evaluate_synset", "format_table",
           "prepare_test_data", "test_accuracy", "train_model"]
