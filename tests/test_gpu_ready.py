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


@pytest.mark.cuda
@cuda
def test_memory_budgeted_real_passes_equal_the_unsplit_ones_on_cuda(digits, monkeypatch):
    from distillset.methods.gradient_matching import GradientMatching, GradientMatchingConfig, matched_parameters
    from distillset.models import build_model
    from distillset.seeding import make_generator

    real = ds.real_data(digits, "train", "cuda")
    config = GradientMatchingConfig(ipc=2, model="mlp", batch_real=16, compile=False, init="real")
    losses = []
    for budget in (None, 1):
        engine = GradientMatching(real, config, batched=True)
        engine.memory_budget = budget
        state = engine.initial_state()
        net = build_model("mlp", real.shape, 10, torch.Generator().manual_seed(3), "cuda")
        losses.append(engine.matching_loss(net, matched_parameters(net, "ours"), state.images, state.labels,
                                           make_generator(0, "t")))
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)


@pytest.mark.cuda
@cuda
def test_run_json_records_the_numerics_of_a_gpu_run(tmp_path):
    import json

    from distillset.cli import main

    try:
        assert main(["condense", "--method", "dm", "--dataset", "digits", "--ipc", "1", "--iterations", "1", "--device", "cuda",
                     "--deterministic", "--no-progress", "--out", str(tmp_path / "r")]) == 0
    finally:
        restore_default_numerics()
    env = json.loads((tmp_path / "r" / "run.json").read_text())["environment"]
    assert env["device"].startswith("cuda") and env["numerics"]["gpu"] and env["numerics"]["tf32_matmul"] is False
    assert env["numerics"]["deterministic_algorithms"] is True


def restore_default_numerics() -> None:
    """Undo --deterministic in this test process (the flag is process-wide, as for a command)."""
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = False
    torch.backends.cuda.matmul.allow_tf32 = False  # PyTorch's default for matmul
    torch.backends.cudnn.allow_tf32 = True


def test_deterministic_runs_are_their_own_run_and_record_their_numerics(tmp_path, capsys):
    import json

    from distillset.cli import main

    args = ["condense", "--method", "dm", "--dataset", "digits", "--ipc", "1", "--iterations", "2", "--no-progress",
            "--threads", "1", "--out", str(tmp_path / "r")]
    assert main(args) == 0
    env = json.loads((tmp_path / "r" / "run.json").read_text())["environment"]
    assert env["device"] == "cpu" and env["numerics"]["torch_threads"] == 1
    assert env["numerics"]["deterministic_algorithms"] is False
    try:
        code = main(args + ["--deterministic"])  # other GPU numerics: not the finished run above
    finally:
        restore_default_numerics()
    assert code == 2 and "different configuration" in capsys.readouterr().err  # without it in the identity: "nothing to do"
