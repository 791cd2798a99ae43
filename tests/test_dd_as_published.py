"""DD as its 2018 code runs it: fixed steps, Xavier networks, the MNIST preset, and DD's own evaluation."""

from __future__ import annotations

import json
import math

import pytest
import torch

from distillset.data import real_data
from distillset.driver import run_condense
from distillset.errors import DistillsetError
from distillset.evaluation.learned_schedule import each_learned_schedule_run, learned_plan, train_by_learned_schedule
from distillset.methods.dataset_distillation import DatasetDistillation, DatasetDistillationConfig
from distillset.methods.unroll import fixed_steps
from distillset.models import build_model
from distillset.presets import preset_for
from distillset.synset import SynSet
from distillset.training import fixed_step_groups

QUIET = dict(log=lambda message: None)


def test_fixed_step_groups_take_the_sth_slice_of_every_class():
    labels = torch.arange(3).repeat_interleave(4)  # class-major, 4 per class: 0 0 0 0 1 1 1 1 2 2 2 2
    groups = fixed_step_groups(labels, 2)
    assert [g.tolist() for g in groups] == [[0, 1, 4, 5, 8, 9], [2, 3, 6, 7, 10, 11]]
    assert [g.tolist() for g in fixed_step_groups(labels, 4)] == [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]
    with pytest.raises(DistillsetError, match="multiple of 3"):
        fixed_step_groups(labels, 3)
    plan = fixed_steps(labels, 2, 3, torch.Generator().manual_seed(0), None, (8, 8))
    assert len(plan) == 6 and all(torch.equal(plan[t].index, groups[t % 2]) for t in range(6))  # steps repeat per epoch


def test_xavier_networks_have_xavier_spread_and_zero_biases():
    net = build_model("lenet", (1, 28, 28), 10, torch.Generator().manual_seed(0), init="xavier")
    fc1 = net.fc[0]  # 400 -> 120: std sqrt(2 / 520)
    assert abs(float(fc1.weight.detach().std()) - math.sqrt(2 / 520)) < 0.003 and torch.count_nonzero(fc1.bias) == 0
    default = build_model("lenet", (1, 28, 28), 10, torch.Generator().manual_seed(0))
    assert torch.count_nonzero(default.fc[0].bias) > 0  # PyTorch's default draws biases
    again = build_model("lenet", (1, 28, 28), 10, torch.Generator().manual_seed(0), init="xavier")
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), again.parameters()))  # the generator fixes it
    with pytest.raises(DistillsetError, match="unknown network initialisation 'he'"):
        build_model("lenet", (1, 28, 28), 10, torch.Generator(), init="he")


def test_the_mnist_ipc10_preset_is_the_2018_code_and_other_sizes_keep_the_defaults():
    assert preset_for("dd", "mnist", 10) == {"model": "lenet", "step_images": "fixed", "network_init": "xavier"}
    assert preset_for("dd", "mnist", 1) is None and preset_for("dd", "fashion-mnist", 10) is None
    assert DatasetDistillationConfig().step_images == "shuffled" and DatasetDistillationConfig().network_init == "default"


def test_fixed_steps_refuse_an_ipc_that_does_not_split(digits):
    real = real_data(digits, "train")
    with pytest.raises(DistillsetError, match="multiple of steps"):
        DatasetDistillation(real, DatasetDistillationConfig(ipc=3, steps=2, step_images="fixed"))
    with pytest.raises(DistillsetError, match="drop batch_syn"):
        DatasetDistillation(real, DatasetDistillationConfig(ipc=2, steps=2, step_images="fixed", batch_syn=5))


def test_a_fixed_step_image_gets_gradient_only_through_its_own_steps(digits):
    """With fixed steps an image of group s moves only through step s's loss; its step sizes are shared by no other
    group. Zeroing step 1's step sizes (both epochs) must leave group 1's images without gradient."""
    real = real_data(digits, "train")
    engine = DatasetDistillation(real, DatasetDistillationConfig(ipc=2, steps=2, epochs=2, step_images="fixed", batch_real=100,
                                                                 model="convnet-d2-w32"))
    state = engine.initial_state()
    state.extras["raw_lrs"][torch.tensor([1, 3])] = -40.0  # softplus(-40) ~ 4e-18: steps 1 and 3 (group 1) do nothing
    before = state.images.clone()
    engine.step(state)
    group1 = fixed_step_groups(state.labels, 2)[1]
    group0 = fixed_step_groups(state.labels, 2)[0]
    assert torch.allclose(state.images[group1], before[group1], atol=1e-6)
    assert not torch.allclose(state.images[group0], before[group0])


def test_learned_schedule_evaluation_replays_the_steps_and_resumes_run_by_run(tmp_path, digits):
    options = {"steps": 2, "epochs": 2, "batch_real": 100, "step_images": "fixed", "network_init": "xavier", "init_lr": 0.05}
    outcome = run_condense("dd", "digits", 2, tmp_path / "dd", model="convnet-d2-w32", iterations=4, options=options,
                           progress=False, **QUIET)
    synset = outcome.synset
    plan, lrs = learned_plan(synset, torch.Generator().manual_seed(0))
    assert len(plan) == 4 and lrs == synset.config["learned_step_sizes"]
    assert torch.equal(plan[0], plan[2]) and not torch.equal(plan[0], plan[1])
    all_runs = list(each_learned_schedule_run(synset, digits.test_images, digits.test_labels, 3, seed=5))
    assert [r[0] for r in all_runs] == [0, 1, 2] and all(r[2] is None and 0 <= r[1] <= 1 and r[4] == 4 for r in all_runs)
    resumed = list(each_learned_schedule_run(synset, digits.test_images, digits.test_labels, 3, skip={0, 1}, seed=5))
    assert [(r[0], r[1]) for r in resumed] == [(2, all_runs[2][1])]  # run 2 alone: the same network, the same accuracy

    # the training is plain gradient descent at the learned step sizes: one step by hand equals the replay
    net = build_model("convnet-d2-w32", synset.shape, 10, torch.Generator().manual_seed(3), init="xavier")
    by_hand = build_model("convnet-d2-w32", synset.shape, 10, torch.Generator().manual_seed(3), init="xavier")
    train_by_learned_schedule(net, synset.images, synset.labels, plan[:1], lrs[:1])
    loss = torch.nn.functional.cross_entropy(by_hand(synset.images[plan[0]]), synset.labels[plan[0]])
    grads = torch.autograd.grad(loss, list(by_hand.parameters()))
    for p, q, g in zip(net.parameters(), by_hand.parameters(), grads):
        assert torch.allclose(p, q - lrs[0] * g, atol=1e-6)


def test_learned_schedule_evaluation_refuses_a_set_without_step_sizes(digits):
    real = real_data(digits, "train")
    plain = SynSet.from_real(real, real.images[:10], real.labels[:10], method="dc", ipc=1, config={})
    with pytest.raises(DistillsetError, match="needs a DD set"):
        list(each_learned_schedule_run(plain, digits.test_images, digits.test_labels, 1))


def test_cli_evaluates_a_dd_set_with_its_learned_steps_and_refuses_options_that_cannot_apply(tmp_path, digits, capsys):
    from distillset.cli import main

    options = {"steps": 2, "epochs": 1, "batch_real": 100, "step_images": "fixed", "network_init": "xavier"}
    run_condense("dd", "digits", 2, tmp_path / "dd", model="convnet-d2-w32", iterations=2, options=options, progress=False, **QUIET)
    path = str(tmp_path / "dd" / "synset.safetensors")
    assert main(["evaluate", path, "--lr-schedule", "learned", "--runs", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    expected = [r[1] for r in each_learned_schedule_run(SynSet.load(path), digits.test_images, digits.test_labels, 2)]
    assert result["results"]["convnet-d2-w32"]["accs"] == expected  # the same networks as the library's runs
    assert result["protocol"]["convnet-d2-w32"]["steps"] == 2
    for extra, said in ((["--epochs", "5"], "--epochs cannot apply"), (["--models", "mlp"], "distilled for (convnet-d2-w32)"),
                        (["--lr-grid", "0.1,0.01", "--val-fraction", "0.1"], "--val-fraction, --lr-grid cannot apply: drop them")):
        assert main(["evaluate", path, "--lr-schedule", "learned", *extra]) == 2
        assert said in capsys.readouterr().err
