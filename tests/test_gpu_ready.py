"""Paths that run on a GPU, checked on the CPU where they can be (issue "Ready for the GPU")."""

from __future__ import annotations

import torch

import distillset as ds
from distillset.methods.experts import ExpertConfig, train_experts
from distillset.methods.unroll import FlatStudent


def test_batchnorm_experts_train_one_at_a_time_when_parallel_is_asked(tmp_path):
    messages: list[str] = []
    index = train_experts("digits", tmp_path / "bn", ExpertConfig(model="convnet-d2-bn", experts=2, epochs=1, lr=0.05),
                          parallel=2, log=messages.append)
    assert len(index["experts"]) == 2 and all(e["epochs_done"] == 1 for e in index["experts"])
    assert any("one at a time" in m for m in messages)


def test_a_student_built_elsewhere_follows_the_data_device():
    net = ds.build_model("convnet-d2-bn", (1, 8, 8), 10, torch.Generator().manual_seed(0))
    student = FlatStudent(net)
    x = torch.randn(4, 1, 8, 8)
    theta = FlatStudent.flatten(net)
    assert torch.allclose(student(theta, x), net.train()(x), atol=1e-5)
    assert all(b.device == x.device for b in student.buffers.values())


import pytest  # noqa: E402

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.cuda
@cuda
def test_batched_evaluation_matches_sequential_on_cuda(digits):
    synset = ds.make_coreset("random", ds.real_data(digits, "train"), 2)
    runs = {s: ds.evaluate_synset(synset, digits.test_images, digits.test_labels, models=["convnet-d2"], runs=3, epochs=20,
                                  device="cuda", strategy=s).results["convnet-d2"].accs for s in ("sequential", "batched")}
    assert max(abs(a - b) for a, b in zip(runs["sequential"], runs["batched"])) <= 0.02


@pytest.mark.cuda
@cuda
def test_every_image_method_takes_a_step_on_cuda(digits):
    real = ds.real_data(digits, "train", "cuda")
    for method in ("dc", "dsa", "dm", "dd"):
        synset = ds.condense_real(method, real, 1, model="convnet-d2", iterations=1,
                                  options={"compile": False} if method in ("dc", "dsa") else None)
        assert torch.isfinite(synset.images).all()
