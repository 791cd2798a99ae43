"""Gradient matching (DC/DSA): curriculum, distances, exact batched per-class gradients, the step,
resume equality, NaN handling and the command line."""

from __future__ import annotations

import json

import pytest
import torch

from distillset.driver import run_condense
from distillset.data import real_data
from distillset.errors import DistillsetError
from distillset.methods.gradient_matching import (GradientMatching, GradientMatchingConfig, distance, loops_for_ipc,
                                                  looped_real_gradients, matched_parameters, per_class_real_gradients)
from distillset.models import build_model
from distillset.synset import SynSet


def test_curriculum_table_and_rule():
    assert [loops_for_ipc(i) for i in (1, 10, 20, 30, 40, 50)] == [(1, 1), (10, 50), (20, 25), (30, 20), (40, 15), (50, 10)]
    assert loops_for_ipc(5) == (5, 50) and loops_for_ipc(100) == (50, 5) and loops_for_ipc(2) == (2, 50)


def test_distances():
    g = [torch.randn(4, 3, 3, 3), torch.randn(4)]
    assert float(distance(g, g, "ours")) == pytest.approx(0, abs=1e-5)
    assert float(distance(g, [-t for t in g], "ours")) == pytest.approx(8, abs=1e-4)  # 4 rows x (1 - (-1))
    bias_only = [g[0], g[1] + 100]
    assert float(distance(g, bias_only, "ours")) == pytest.approx(0, abs=1e-5)  # 1-D tensors contribute 0
    assert float(distance(g, bias_only, "mse")) == pytest.approx(4 * 100 ** 2, rel=1e-5)
    assert float(distance(g, [2 * t for t in g], "cos")) == pytest.approx(0, abs=1e-5)


@pytest.mark.parametrize("model", ["convnet", "convnet-bn", "mlp", "lenet", "convnet-ln"])
@pytest.mark.parametrize("kind", ["ours", "mse"])
def test_batched_per_class_gradients_equal_the_loop(model, kind):
    net = build_model(model, (1, 28, 28), 10, torch.Generator().manual_seed(0))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()  # frozen during matching, as the method does
    x = torch.randn(30, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = torch.arange(10).repeat_interleave(3)
    params = matched_parameters(net, kind)
    batched = per_class_real_gradients(net, x, y, [3] * 10, params)
    looped = looped_real_gradients(net, x, y, [3] * 10, params)
    if batched is None:  # parameters the fast path does not cover (norm affines) fall back to the loop
        assert model in ("convnet", "convnet-bn", "convnet-ln")
        return
    for a, b in zip(batched, looped):
        for ga, gb in zip(a, b):
            torch.testing.assert_close(ga, gb, rtol=1e-4, atol=1e-6)
            assert not ga.requires_grad


def test_matching_step_lowers_the_loss_for_a_fixed_network(digits):
    real = real_data(digits)
    engine = GradientMatching(real, GradientMatchingConfig(ipc=2, seed=0, init="noise", lr_img=0.1, compile=False))
    state = engine.initial_state()
    net = build_model("convnet", real.shape, 10, torch.Generator().manual_seed(3))
    params = matched_parameters(net, "ours")
    images = state.images.clone().requires_grad_(True)
    before = engine.matching_loss(net, params, images, state.labels, torch.Generator().manual_seed(9))
    (grad,) = torch.autograd.grad(before, images)
    step = 0.01 * grad / grad.abs().max()  # a small descent step: first order dominates
    after = engine.matching_loss(net, params, (images - step).detach(), state.labels, torch.Generator().manual_seed(9))
    assert after.item() < before.item() - 0.1 * float((grad * step).sum())


def test_resume_gives_the_uninterrupted_result(digits, tmp_path):
    kwargs = dict(dataset="digits", ipc=1, iterations=4, seed=3, checkpoint_every=1, progress=False, log=lambda m: None,
                  options={"compile": False})
    run_condense("dc", out=tmp_path / "straight", **kwargs)
    assert run_condense("dc", out=tmp_path / "resumed", stop_after=2, **kwargs) is None
    assert (tmp_path / "resumed" / "checkpoint.safetensors").exists()
    run_condense("dc", out=tmp_path / "resumed", **kwargs)
    a = SynSet.load(tmp_path / "straight" / "synset.safetensors")
    b = SynSet.load(tmp_path / "resumed" / "synset.safetensors")
    assert torch.equal(a.images, b.images)
    assert not (tmp_path / "resumed" / "checkpoint.safetensors").exists()
    record = json.loads((tmp_path / "resumed" / "run.json").read_text())
    assert len(record["metrics"]["loss_per_iteration"]) == 4


def test_nan_stops_with_a_message_and_keeps_the_checkpoint(digits, tmp_path):
    with pytest.raises(DistillsetError, match=r"matching loss became nan at iteration \d+.*--lr-img.*kept in"):
        run_condense("dc", "digits", 1, tmp_path / "nan", iterations=30, options={"lr_img": 1e30, "compile": False}, progress=False, log=lambda m: None)
    assert (tmp_path / "nan" / "checkpoint.safetensors").exists()


def test_dsa_starts_from_real_images_and_runs(digits, tmp_path):
    real = real_data(digits)
    engine = GradientMatching(real, GradientMatchingConfig(ipc=1, dsa=True, init="real", compile=False))
    state = engine.initial_state()
    assert (state.images.flatten(1)[:, None] == real.images.flatten(1)[None]).all(-1).any(1).all()
    engine.step(state)
    assert state.iteration == 1 and torch.isfinite(state.images).all()


def test_bad_method_options(digits):
    real = real_data(digits)
    with pytest.raises(DistillsetError, match="option 'distance' must be one of ours, mse, cos"):
        GradientMatching(real, GradientMatchingConfig(distance="l7"))
    with pytest.raises(DistillsetError, match="ipc 500 is larger"):
        GradientMatching(real, GradientMatchingConfig(ipc=500))
    with pytest.raises(DistillsetError, match="unknown image condensation method 'mttx'"):
        run_condense("mttx", "digits", 1, "unused")


def test_compiled_real_gradients_match_eager(digits):
    """torch.compile'd class passes give the eager gradients, and a fresh network reuses the compiled graph."""
    real = real_data(digits)
    eager = GradientMatching(real, GradientMatchingConfig(ipc=1, compile=False))
    compiled = GradientMatching(real, GradientMatchingConfig(ipc=1, compile=True))
    state = eager.initial_state()
    for seed in (0, 1):
        net = build_model("convnet", real.shape, 10, torch.Generator().manual_seed(seed))
        params = matched_parameters(net, "ours")
        losses = [e.matching_loss(net, params, state.images, state.labels, torch.Generator().manual_seed(7)).item()
                  for e in (eager, compiled)]
        assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    assert compiled.compile_error is None and compiled._compiled is not None


def test_batchnorm_is_frozen_for_matching_and_trains_in_between(digits, monkeypatch):
    import distillset.methods.gradient_matching as gm

    seen: list[tuple[bool, int]] = []

    def spy_build(*args, **kwargs):
        net = build_model(*args, **kwargs)
        bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
        bn.register_forward_pre_hook(lambda module, inp: seen.append((module.training, inp[0].shape[0])))
        return net

    monkeypatch.setattr(gm, "build_model", spy_build)
    engine = GradientMatching(real_data(digits), GradientMatchingConfig(ipc=2, model="convnet-bn", compile=False))
    state = engine.initial_state()
    engine.step(state)
    stats_pass = [t for t, n in seen if n == 16 * 10]  # the 16-per-class statistics pass, in train mode
    assert stats_pass and all(stats_pass)
    assert any(t for t, n in seen if n == 20)  # inner training on the 20 synthetic images: train mode
    assert not any(t for t, n in seen if n == 2)  # matching the synthetic class batches: frozen


def test_periodic_evaluation_is_recorded(digits, tmp_path):
    messages: list[str] = []
    run_condense("dc", "digits", 1, tmp_path / "e", iterations=2, eval_every=1, eval_runs=1, eval_epochs=3,
                 options={"compile": False}, progress=False, log=messages.append)
    record = json.loads((tmp_path / "e" / "run.json").read_text())
    evaluations = record["metrics"]["evaluations"]
    assert [e["iteration"] for e in evaluations] == [1, 2] and all(0 <= e["mean"] <= 1 for e in evaluations)
    assert any(m.startswith("iteration 1:") for m in messages)


def test_option_names_and_types_are_checked(tmp_path):
    from distillset.driver import read_options_file
    from distillset.methods.contract import config_from_options

    def check_options(options):
        return config_from_options(GradientMatchingConfig, options, "options")

    assert check_options({"lr_img": 1, "iterations": 5, "dsa_strategy": "color_crop", "compile": False})
    assert check_options({"outer_loop": 2}).outer_loop == 2  # an option whose default is None keeps its declared type
    with pytest.raises(DistillsetError, match="option 'iterations' must be int, got 'many'"):
        check_options({"iterations": "many"})
    with pytest.raises(DistillsetError, match="option 'compile' must be bool"):
        check_options({"compile": "yes"})
    with pytest.raises(DistillsetError, match="unknown option"):
        run_condense("dc", "digits", 1, tmp_path / "x", options={"lr": 0.1})
    (tmp_path / "c.yaml").write_text("lr_img: [1, 2]\n")
    with pytest.raises(DistillsetError, match="option 'lr_img' must be float"):
        check_options(read_options_file(tmp_path / "c.yaml"))
    (tmp_path / "d.yaml").write_text("- just\n- a list\n")
    with pytest.raises(DistillsetError, match="must be a mapping"):
        read_options_file(tmp_path / "d.yaml")
