"""Evaluation: the paper protocol (fresh models trained on a SynSet, tested once on real data)."""

from .protocol import EvalResults, ModelResult, TrainConfig, each_run, evaluate_synset, format_table, prepare_test_data, test_accuracy, train_model

__all__ = ["EvalResults", "ModelResult", "TrainConfig", "each_run", "evaluate_synset", "format_table", "prepare_test_data", "test_accuracy", "train_model"]
