"""Trajectory matching: ZCA, the unroll machinery, expert folders, MTT, DATM and DD, on tiny real data."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from distillset.augment import DSA
from distillset.augment.zca import ZCA
from distillset.driver import run_condense
from distillset.data import real_data
from distillset.errors import DistillsetError
from distillset.evaluation.protocol import prepare_test_data
from distillset.methods.dataset_distillation import DatasetDistillation, DatasetDistillationConfig
from distillset.methods.experts import ExpertBuffer, ExpertConfig, train_experts
from distillset.methods.trajectory_matching import DATMConfig, TrajectoryMatching, TrajectoryMatchingConfig
from distillset.methods.unroll import FlatStudent, Unroller, draw_steps
from distillset.models import build_model
from distillset.synset import SynSet

QUIET = dict(log=lambda message: None)
# the default ConvNet (depth 3) pools 8x8 digits down to 1x1 and trains poorly on them; depth 2 reaches ~80% in 3 epochs
MODEL = "convnet-d2-w32"


@pytest.fixture(scope="module")
def experts_dir(tmp_path_factory):
    """Two digits experts of three epochs (lr 0.1 so that they move noticeably in 18 steps)."""
    out = tmp_path_factory.mktemp("experts")
    train_experts("digits", out, ExpertConfig(model=MODEL, experts=2, epochs=3, lr=0.1), **QUIET)
    return out


# ---------------------------------------------------------------------------------------------- ZCA
def test_zca_whitens_and_the_evaluator_applies_the_same_transform(digits):
    real = real_data(digits, "train")
    white = real.whitened(eps=1e-3)
    flat = white.images.reshape(len(white.images), -1).double()
    cov = torch.cov(flat.T)
    active = torch.linalg.eigvalsh(torch.cov(real.pixels().reshape(len(real.images), -1).double().T)) > 0.05
    # whitened covariance: eigenvalues s/(s+eps), close to 1 wherever the data has variance
    assert torch.linalg.eigvalsh(cov)[active].min() > 0.9
    assert flat.mean(0).abs().max() < 1e-4
    synset = SynSet(white.images[:10], white.labels[:10], "digits", 10, white.mean, white.std, "x", 1,
                    zca_mean=white.zca.mean, zca_matrix=white.zca.matrix).validate()
    test_x, _ = prepare_test_data(synset, digits.train_images[:50], digits.train_labels[:50], "cpu")
    assert torch.allclose(test_x, white.images[:50], atol=1e-4)


def test_zca_rejects_bad_input():
    with pytest.raises(DistillsetError, match="at least 2 images"):
        ZCA.fit(torch.zeros(1, 1, 4, 4))
    with pytest.raises(DistillsetError, match="NaN"):
        ZCA.fit(torch.full((4, 1, 2, 2), float("nan")))
    with pytest.raises(DistillsetError, match="fitted on 4 values"):
        ZCA.fit(torch.randn(8, 1, 2, 2))(torch.zeros(2, 1, 3, 3))


# ---------------------------------------------------------------------------------------------- unroll
def _unroll_problem(steps: int = 4, images: int = 9, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    net = build_model("convnet", (1, 12, 12), 3, g)
    student = FlatStudent(net)
    start = FlatStudent.flatten(net)
    target = start + 0.01 * torch.randn(start.shape, generator=g)
    x = torch.randn(images, 1, 12, 12, generator=g, requires_grad=True)
    soft = torch.randn(images, 3, generator=g, requires_grad=True)
    dsa = DSA("color_crop_cutout_scale_rotate")
    plan = draw_steps(images, steps, 5, g, dsa, (12, 12), torch.device("cpu"))
    outer = lambda theta: ((theta - target) ** 2).sum() / ((start - target) ** 2).sum()  # noqa: E731
    return Unroller(student, dsa), start, x, soft, plan, outer


@pytest.mark.parametrize("per_step_lr", [False, True])
def test_checkpointed_gradient_equals_the_plain_unrolled_one(per_step_lr):
    unroller, start, x, soft, plan, outer = _unroll_problem()
    lr = (torch.full((len(plan),), 0.05) if per_step_lr else torch.tensor(0.05)).requires_grad_(True)
    loss_plain, plain = unroller.run(start, x, soft, lr, plan, outer, [x, soft, lr])
    loss_ckpt, ckpt = unroller.run(start, x, soft, lr, plan, outer, [x, soft, lr], checkpointed=True)
    assert torch.allclose(loss_plain, loss_ckpt)
    for a, b in zip(plain, ckpt):
        assert a.shape == b.shape and a.abs().max() > 0
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6 * float(a.abs().max()))


def test_the_unrolled_gradient_matches_a_finite_difference():
    """In float64 with a tiny step (ReLU, max-pooling and DSA's resampling make the loss only piecewise smooth)."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        unroller, start, x, soft, plan, outer = _unroll_problem()
        lr = torch.tensor(0.05, requires_grad=True)
        gradient = float(unroller.run(start, x, soft, lr, plan, outer, [lr])[1][0])
        eps = 1e-7
        up = unroller.run(start, x, soft, (lr + eps).detach(), plan, outer, [x])[0]
        down = unroller.run(start, x, soft, (lr - eps).detach(), plan, outer, [x])[0]
    finally:
        torch.set_default_dtype(default)
    assert float(up - down) / (2 * eps) == pytest.approx(gradient, rel=1e-4)


class _LiveSavedBytes:
    """Peak bytes of tensors that autograd holds for backward at any one time."""

    def __init__(self) -> None:
        self.live = self.peak = 0

    def __enter__(self):
        tracker = self

        class Held:
            def __init__(self, t):
                self.t, self.n = t, t.numel() * t.element_size()
                tracker.live += self.n
                tracker.peak = max(tracker.peak, tracker.live)

            def __del__(self):
                tracker.live -= self.n

        self._hooks = torch.autograd.graph.saved_tensors_hooks(Held, lambda held: held.t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)


def test_checkpointed_memory_does_not_grow_with_steps():
    peaks = {}
    for mode in ("plain", "checkpointed"):
        for steps in (3, 9):
            unroller, start, x, soft, plan, outer = _unroll_problem(steps=steps)
            lr = torch.tensor(0.05, requires_grad=True)
            with _LiveSavedBytes() as tracker:
                unroller.run(start, x, soft, lr, plan, outer, [x, lr], checkpointed=mode == "checkpointed")
            peaks[mode, steps] = tracker.peak
    assert peaks["plain", 9] > 2.5 * peaks["plain", 3]
    assert peaks["checkpointed", 9] < 1.1 * peaks["checkpointed", 3]
    assert peaks["checkpointed", 9] < peaks["plain", 9] / 3


# ---------------------------------------------------------------------------------------------- experts
def test_expert_folder_layout_and_accuracy(experts_dir):
    index = json.loads((experts_dir / "index.json").read_text())
    assert index["format"] == "distillset.experts/1" and index["dataset"] == "digits" and index["model"] == MODEL
    assert [e["epochs_done"] for e in index["experts"]] == [3, 3]
    assert all(e["test_accuracy"] > 0.6 for e in index["experts"])  # chance is 0.1
    buffer = ExpertBuffer(experts_dir, "digits", MODEL, (1, 8, 8), 10)
    trajectory = buffer.trajectory(0)
    assert trajectory.shape == (4, buffer.num_params)
    assert (trajectory[1:] - trajectory[:-1]).norm(dim=1).min() > 0  # every epoch moved the parameters
    assert not torch.equal(buffer.trajectory(0)[0], buffer.trajectory(1)[0])  # experts start apart


def test_interrupted_experts_resume_exactly(tmp_path, experts_dir):
    class Interrupt(Exception):
        pass

    def interrupt_after_first_epoch(message):
        if "epoch 2/3" in message:
            raise Interrupt

    config = ExpertConfig(model=MODEL, experts=2, epochs=3, lr=0.1)
    with pytest.raises(Interrupt):
        train_experts("digits", tmp_path, config, log=interrupt_after_first_epoch)
    with pytest.raises(DistillsetError, match="partial"):
        ExpertBuffer(tmp_path, "digits", MODEL, (1, 8, 8), 10)
    train_experts("digits", tmp_path, config, **QUIET)
    done = ExpertBuffer(tmp_path, "digits", MODEL, (1, 8, 8), 10)
    reference = ExpertBuffer(experts_dir, "digits", MODEL, (1, 8, 8), 10)
    for i in range(2):
        assert torch.equal(done.trajectory(i), reference.trajectory(i))
    with pytest.raises(DistillsetError, match="different configuration"):
        train_experts("digits", tmp_path, ExpertConfig(model=MODEL, experts=2, epochs=3, lr=0.2), **QUIET)


def test_vmapped_experts_match_sequential_ones(tmp_path, experts_dir, digits):
    from distillset.methods.experts import ExpertTrainer

    real = real_data(digits, "train")
    trainer = ExpertTrainer(real, (real.images[:10], real.labels[:10]), ExpertConfig(model=MODEL, experts=2, epochs=3, lr=0.1), tmp_path,
                            "digits", parallel=2, **QUIET)
    trainer.run()
    together = ExpertBuffer(tmp_path, "digits", MODEL, (1, 8, 8), 10)
    alone = ExpertBuffer(experts_dir, "digits", MODEL, (1, 8, 8), 10)
    for i in range(2):
        # the gradients agree to ~1e-6 relative (reduction order); 6 SGD steps per epoch at lr 0.1 through the
        # 2x2-pixel instance norms of a ConvNet on 8x8 digits amplify that, so the bound widens with the epochs
        difference = (together.trajectory(i) - alone.trajectory(i)).abs().max(dim=1).values
        assert difference[0] == 0 and difference[1] < 1e-3 and difference[-1] < 1e-2, difference


def test_expert_folders_are_checked(tmp_path, experts_dir):
    with pytest.raises(DistillsetError, match="does not exist"):
        ExpertBuffer(tmp_path / "nowhere", "digits", MODEL, (1, 8, 8), 10)
    with pytest.raises(DistillsetError, match="no index.json"):
        ExpertBuffer(tmp_path, "digits", MODEL, (1, 8, 8), 10)
    with pytest.raises(DistillsetError, match="trained on 'digits', not 'mnist'"):
        ExpertBuffer(experts_dir, "mnist", MODEL, (1, 8, 8), 10)
    with pytest.raises(DistillsetError, match="'convnet-d2-w32' networks, not 'mlp'"):
        ExpertBuffer(experts_dir, "digits", "mlp", (1, 8, 8), 10)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "index.json").write_text("{not json")
    with pytest.raises(DistillsetError, match="corrupt"):
        ExpertBuffer(broken, "digits", MODEL, (1, 8, 8), 10)


# ---------------------------------------------------------------------------------------------- MTT / DATM
def _tm(digits, experts_dir, **options) -> TrajectoryMatching:
    settings = {"ipc": 2, "model": MODEL, "experts_dir": str(experts_dir), "syn_steps": 6, "expert_epochs": 1,
                "max_start_epoch": 2, "lr_teacher": 0.1, **options}
    config = (DATMConfig if settings.get("soft_labels") else TrajectoryMatchingConfig)(**settings)
    return TrajectoryMatching(real_data(digits, "train"), config)


def test_mtt_rejects_a_start_epoch_beyond_the_experts(digits, experts_dir):
    with pytest.raises(DistillsetError, match="needs experts of at least 4 epochs"):
        _tm(digits, experts_dir, max_start_epoch=3, expert_epochs=2)
    with pytest.raises(DistillsetError, match="--experts-dir"):
        TrajectoryMatching(real_data(digits, "train"), TrajectoryMatchingConfig(ipc=2, model=MODEL))


def test_mtt_steps_lower_the_matching_loss(digits, experts_dir):
    engine = _tm(digits, experts_dir, lr_img=100.0, dsa=False, max_start_epoch=1)  # start epoch 0 of one of two experts
    state = engine.initial_state()
    losses = [engine.step(state) for _ in range(10)]
    assert sum(losses[-3:]) / 3 < 0.6 * losses[0], losses
    synset = engine.to_synset(state)
    assert synset.lr is not None and float(synset.lr) > 0 and synset.soft_labels is None


def test_datm_learns_soft_labels_and_initialises_from_correct_images(digits, experts_dir):
    engine = _tm(digits, experts_dir, soft_labels=True, init="correct", threshold=0.0)
    state = engine.initial_state()
    logits = state.extras["soft_labels"]
    assert logits.shape == (20, 10)
    assert (logits.argmax(1) == state.labels).float().mean() > 0.5  # chosen because the experts get them right
    initial = logits.clone()
    engine.step(state)
    assert not torch.equal(state.extras["soft_labels"], initial)
    synset = engine.to_synset(state).validate()
    assert synset.soft_labels is not None and synset.lr is not None


def test_datm_window_grows_and_the_gate_skips_updates(digits, experts_dir):
    engine = _tm(digits, experts_dir, soft_labels=True, current_max_start_epoch=1, expansion_end=10, min_start_epoch=0)
    assert engine.start_window(0) == (0, 1) and engine.start_window(10) == (0, 2) and engine.start_window(99) == (0, 2)
    gated = _tm(digits, experts_dir, threshold=1e-9)
    state = gated.initial_state()
    images = state.images.clone()
    gated.step(state)
    assert torch.equal(state.images, images) and int(state.extras["skipped"]) == 1


def test_an_exploding_learned_lr_is_clamped_with_a_warning(digits, experts_dir):
    engine = _tm(digits, experts_dir, lr_lr=1e6, lr_max=0.05)
    state = engine.initial_state()
    engine.step(state)
    warnings = engine.pop_warnings()
    assert warnings and "clamped" in warnings[0]
    assert 0.99e-5 <= float(state.extras["lr"]) <= 0.05


def test_datm_command_line_runs_resumes_and_evaluates_with_soft_labels(tmp_path, experts_dir, capsys):
    from distillset.cli import main

    args = ["condense", "--method", "datm", "--dataset", "digits", "--ipc", "1", "--model", MODEL, "--experts-dir", str(experts_dir),
            "--syn-steps", "3", "--expert-epochs", "1", "--max-start-epoch", "2", "--iterations", "4", "--no-progress"]
    once = tmp_path / "once"
    assert main(args + ["--out", str(once)]) == 0
    resumed = tmp_path / "resumed"
    run_condense("datm", "digits", 1, resumed, model=MODEL, iterations=4, progress=False, stop_after=2, **QUIET,
                 options={"experts_dir": str(experts_dir), "syn_steps": 3, "expert_epochs": 1, "max_start_epoch": 2})
    assert (resumed / "checkpoint.safetensors").is_file()
    assert main(args + ["--out", str(resumed), "--memory", "plain"]) == 0
    a, b = SynSet.load(once / "synset.safetensors"), SynSet.load(resumed / "synset.safetensors")
    assert torch.equal(a.images, b.images) and torch.equal(a.soft_labels, b.soft_labels) and torch.equal(a.lr, b.lr)
    capsys.readouterr()
    assert main(["evaluate", str(once / "synset.safetensors"), "--runs", "1", "--epochs", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"]["soft_labels"] is True and result["config"]["lr"] == pytest.approx(float(a.lr))


def test_condense_names_a_missing_expert_folder(tmp_path, capsys):
    from distillset.cli import main

    code = main(["condense", "--method", "mtt", "--dataset", "digits", "--ipc", "1", "--experts-dir", str(tmp_path / "none"),
                 "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 2 and "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- DD
def test_dd_lowers_the_real_loss_on_mnist(mnist):
    from distillset.data.real import RealData

    real = RealData.from_pixels(mnist.train_images[:3000], mnist.train_labels[:3000], 10, mnist.mean, mnist.std, name="mnist")
    engine = DatasetDistillation(real, DatasetDistillationConfig(ipc=1, model="convnet-d2-w32", steps=5, epochs=2, batch_real=200,
                                                                      init_lr=0.1, lr_img=0.05))
    state = engine.initial_state()
    losses = [engine.step(state) for _ in range(12)]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3, losses  # measured: 2.28 -> 1.52
    lrs = DatasetDistillation.step_sizes(state)  # softplus of the learned raw values: positive without clamping
    assert lrs.shape == (10,) and (lrs > 0).all() and not torch.allclose(lrs, torch.full((10,), 0.1))
    synset = engine.to_synset(state)
    assert len(synset.config["learned_step_sizes"]) == 10 and synset.lr is None


def test_dd_checkpointed_step_equals_plain(digits):
    real = real_data(digits, "train")
    states = []
    for memory in ("plain", "checkpointed"):
        engine = DatasetDistillation(real, DatasetDistillationConfig(ipc=1, steps=3, epochs=1, memory=memory))
        state = engine.initial_state()
        engine.step(state)
        states.append(state)
    assert torch.allclose(states[0].images, states[1].images, atol=1e-5)
    assert torch.allclose(states[0].extras["raw_lrs"], states[1].extras["raw_lrs"], atol=1e-6)


def test_functional_student_matches_the_module(digits):
    net = build_model("convnet", (1, 8, 8), 10, torch.Generator().manual_seed(1))
    student = FlatStudent(net)
    x = real_data(digits, "train").images[:7]
    assert torch.allclose(student(FlatStudent.flatten(net), x), net(x), atol=1e-6)
    assert F.softmax(net(x), 1).shape == (7, 10)


def test_zca_experts_hand_their_whitening_to_the_synset(tmp_path, digits):
    experts = tmp_path / "experts"
    train_experts("digits", experts, ExpertConfig(model=MODEL, experts=1, epochs=2, lr=0.1, zca=True), **QUIET)
    assert (experts / "zca.safetensors").is_file()
    outcome = run_condense("mtt", "digits", 1, tmp_path / "mtt", model=MODEL, iterations=2, progress=False, **QUIET,
                           options={"experts_dir": str(experts), "syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 1})
    synset = SynSet.load(outcome.directory / "synset.safetensors")
    buffer = ExpertBuffer(experts, "digits", MODEL, (1, 8, 8), 10)
    assert torch.equal(synset.zca_matrix, buffer.zca.matrix) and torch.equal(synset.zca_mean, buffer.zca.mean)
    test_x, _ = prepare_test_data(synset, digits.test_images[:20], digits.test_labels[:20], "cpu")
    plain = real_data(digits, "test").pixels()[:20]  # the experts' ZCA is fitted on (and applied to) raw pixels
    assert torch.allclose(test_x, buffer.zca(plain), atol=1e-5)


def test_dd_resumes_bitwise_with_its_optimiser_state(tmp_path):
    options = {"steps": 2, "epochs": 1, "batch_real": 100}
    whole = run_condense("dd", "digits", 1, tmp_path / "whole", model=MODEL, iterations=3, options=options, progress=False, **QUIET)
    assert run_condense("dd", "digits", 1, tmp_path / "part", model=MODEL, iterations=3, options=options, progress=False,
                        stop_after=1, **QUIET) is None
    resumed = run_condense("dd", "digits", 1, tmp_path / "part", model=MODEL, iterations=3, options=options, progress=False, **QUIET)
    assert torch.equal(whole.synset.images, resumed.synset.images)
    assert whole.synset.config["learned_step_sizes"] == resumed.synset.config["learned_step_sizes"]
