"""Distribution matching: the batched class means equal the per-class loop, a step lowers the loss for a
fixed network, BatchNorm networks embed each class alone, and the command line runs and resumes."""

from __future__ import annotations

import torch

from distillset.cli import main
from distillset.driver import run_condense
from distillset.data import real_data
from distillset.methods.distribution_matching import DistributionMatching, DistributionMatchingConfig
from distillset.models import build_model
from distillset.synset import SynSet


def frozen(name: str, shape, seed: int = 0):
    net = build_model(name, shape, 10, torch.Generator().manual_seed(seed))
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def test_batched_class_means_equal_the_loop(digits):
    engine = DistributionMatching(real_data(digits), DistributionMatchingConfig(ipc=3))
    state = engine.initial_state()
    net = frozen("convnet", engine.real.shape)
    batched = engine.matching_loss(net, state.images, state.labels, torch.Generator().manual_seed(4), batched=True)
    looped = engine.matching_loss(net, state.images, state.labels, torch.Generator().manual_seed(4), batched=False)
    torch.testing.assert_close(batched, looped, rtol=1e-4, atol=1e-5)


def test_a_step_lowers_the_loss_for_a_fixed_network(digits):
    engine = DistributionMatching(real_data(digits), DistributionMatchingConfig(ipc=2, init="noise"))
    state = engine.initial_state()
    net = frozen("convnet", engine.real.shape)
    images = state.images.clone().requires_grad_(True)
    before = engine.matching_loss(net, images, state.labels, torch.Generator().manual_seed(1))
    (grad,) = torch.autograd.grad(before, images)
    after = engine.matching_loss(net, (images - 0.01 * grad / grad.abs().max()).detach(), state.labels, torch.Generator().manual_seed(1))
    assert after.item() < before.item()


def test_dm_command_line_runs_and_resumes(tmp_path, capsys):
    args = ["condense", "--method", "dm", "--dataset", "digits", "--ipc", "2", "--iterations", "6", "--checkpoint-every", "1",
            "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0, capsys.readouterr().err
    run_condense("dm", "digits", 2, tmp_path / "b", iterations=6, checkpoint_every=1, stop_after=3, progress=False, log=lambda m: None)
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    a, b = SynSet.load(tmp_path / "a" / "synset.safetensors"), SynSet.load(tmp_path / "b" / "synset.safetensors")
    assert a.method == "dm" and a.config["lr_img"] == 1.0 and torch.equal(a.images, b.images)
    assert main(["condense", "--method", "dm", "--dataset", "digits", "--ipc", "1", "--distance", "mse", "--out", str(tmp_path / "c")]) == 2
    assert "--distance does not apply to --method dm" in capsys.readouterr().err
