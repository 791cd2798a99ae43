"""Training under torch.compile (TrainConfig.compile, ``distillset evaluate --compile``): the same bytes run to run,
the eager run's result up to rounding, a resumed run equal to one never cut off, and one-line refusals."""

from __future__ import annotations

import pytest
import torch

from distillset.augment.dc import DCAugment
from distillset.data import real_data
from distillset.driver import make_coreset
from distillset.errors import DistillsetError
from distillset.evaluation import evaluate_synset
from distillset.models import build_model
from distillset.training import TrainConfig, _compile_errors, train_model


def _fresh() -> torch.nn.Module:
    return build_model("convnet", (1, 8, 8), 10, torch.Generator().manual_seed(0))


def _flat(net: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def test_compiled_training_repeats_its_bytes_and_matches_eager_up_to_rounding(digits, tmp_path):
    synset = make_coreset("random", real_data(digits), ipc=3, seed=0)  # 30 images: batches of 16 and 14 (two shapes)
    eager = TrainConfig(epochs=3, batch_size=16, schedule="reference")
    compiled = TrainConfig(epochs=3, batch_size=16, schedule="reference", compile=True)

    def train(config, **kwargs):
        return train_model(_fresh(), synset.images, synset.labels, config, torch.Generator().manual_seed(1), DCAugment(),
                           **kwargs)

    first, second, reference = _flat(train(compiled)), _flat(train(compiled)), _flat(train(eager))
    assert torch.equal(first, second)  # deterministic: the second fresh network reuses the compiled code
    assert not torch.equal(first, reference)  # the fused kernels round differently (were they equal, compile did nothing)
    assert torch.allclose(first, reference, atol=1e-4, rtol=1e-3)

    class CutOff(Exception):
        pass

    def cut(epoch: int) -> None:
        if epoch == 2:
            raise CutOff

    path = tmp_path / "run.safetensors"
    with pytest.raises(CutOff):
        train(compiled, on_epoch=cut, checkpoint=path, checkpoint_seconds=0)
    assert torch.equal(_flat(train(compiled, checkpoint=path)), first)


def test_compiled_evaluation_records_it_and_refuses_batched_training(digits):
    synset = make_coreset("random", real_data(digits), ipc=2, seed=0)
    result = evaluate_synset(synset, digits.test_images, digits.test_labels, models=["convnet"], runs=1, epochs=2,
                             compile=True)
    assert result.config["compile"] is True and len(result.results["convnet"].accs) == 1
    with pytest.raises(DistillsetError, match="--strategy sequential"):
        evaluate_synset(synset, digits.test_images, digits.test_labels, runs=2, epochs=2, strategy="batched", compile=True)


def test_a_failure_of_torch_compile_itself_becomes_one_line_naming_the_fix():
    from torch._dynamo.exc import BackendCompilerFailed

    failure = BackendCompilerFailed.__new__(BackendCompilerFailed)
    RuntimeError.__init__(failure, "backend='inductor' raised:\nCppCompileError: no C++ compiler\nmore lines")
    with pytest.raises(DistillsetError, match=r"torch.compile failed on this machine \(backend='inductor' raised:\); "
                                              r"train without compiling"):
        with _compile_errors(True):
            raise failure
    with pytest.raises(BackendCompilerFailed):  # an eager run never relabels an error as compile's
        with _compile_errors(False):
            raise failure
    with pytest.raises(ValueError):  # nor does a compiled run relabel an error that is not compile's
        with _compile_errors(True):
            raise ValueError("wrong shape")
