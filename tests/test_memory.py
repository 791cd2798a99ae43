"""Real passes split to a memory budget compute what the unsplit pass computes (GPU item: CIFAR-100 scale)."""

from __future__ import annotations

import pytest
import torch

from distillset.data.real import real_data
from distillset.methods.distribution_matching import DistributionMatching, DistributionMatchingConfig
from distillset.methods.gradient_matching import GradientMatching, GradientMatchingConfig, matched_parameters
from distillset.methods.memory import activation_bytes_per_image, class_groups, memory_budget
from distillset.models import build_model
from distillset.seeding import make_generator


def test_class_groups_fit_the_budget_and_cover_every_class():
    assert class_groups([4, 4, 4], 10, None) == [(0, 3)]
    assert class_groups([4, 4, 4], 10, 80) == [(0, 2), (2, 3)]
    assert class_groups([4, 4, 4], 10, 1) == [(0, 1), (1, 2), (2, 3)]  # a class above the budget goes alone
    assert class_groups([], 10, 5) == [(0, 0)]


def test_the_budget_comes_from_the_environment_and_bad_values_are_refused(monkeypatch):
    from distillset.errors import DistillsetError

    assert memory_budget(torch.device("cpu")) is None
    monkeypatch.setenv("DISTILLSET_MEMORY_BUDGET_GB", "0.5")
    assert memory_budget(torch.device("cpu")) == 2 ** 29
    monkeypatch.setenv("DISTILLSET_MEMORY_BUDGET_GB", "-1")
    with pytest.raises(DistillsetError, match="DISTILLSET_MEMORY_BUDGET_GB"):
        memory_budget(torch.device("cpu"))


def test_activation_estimate_grows_with_the_network():
    x = torch.zeros(1, 1, 28, 28)
    small = activation_bytes_per_image(build_model("convnet-d2-w32", (1, 28, 28), 10), x)
    large = activation_bytes_per_image(build_model("convnet", (1, 28, 28), 10), x)
    assert 0 < small < large


def _gm_loss(engine, real):
    state = engine.initial_state()
    net = build_model("mlp", real.shape, real.num_classes, torch.Generator().manual_seed(3))
    params = matched_parameters(net, "ours")
    return engine.matching_loss(net, params, state.images, state.labels, make_generator(0, "t"))


def test_gradient_matching_split_into_class_groups_equals_one_pass(digits):
    real = real_data(digits)
    config = GradientMatchingConfig(ipc=2, model="mlp", batch_real=16, compile=False, init="real")
    whole = GradientMatching(real, config, batched=True)
    split = GradientMatching(real, config, batched=True)
    split.memory_budget = 1  # every class alone
    looped = GradientMatching(real, config, batched=False)
    a, b, c = _gm_loss(whole, real), _gm_loss(split, real), _gm_loss(looped, real)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-5)


def test_distribution_matching_split_real_embedding_equals_one_pass(digits, monkeypatch):
    real = real_data(digits)
    config = DistributionMatchingConfig(ipc=2, batch_real=64, init="real")
    losses = []
    for budget in (None, "0.000001"):  # ~1 KiB: one image per chunk
        if budget:
            monkeypatch.setenv("DISTILLSET_MEMORY_BUDGET_GB", budget)
        engine = DistributionMatching(real, config)
        assert (engine.memory_budget is None) == (budget is None)
        state = engine.initial_state()
        net = build_model(config.model, real.shape, 10, torch.Generator().manual_seed(1))
        if budget:
            assert engine._real_chunk(net, real.images[:64]) == 1
        losses.append(engine.matching_loss(net, state.images, state.labels, make_generator(0, "t")))
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
