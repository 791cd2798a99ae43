"""torchrun (gloo, 2 CPU processes) gives the single-process SynSet and evaluation, and resumes across world sizes.

Tolerance: class shards touch disjoint images and a 2-way sum is order-free, so equality is measured
exact; the assertions allow 1e-6 of the image scale, the reduction-order bound stated in the README.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from distillset.driver import run_condense
from distillset.methods.experts import ExpertConfig, train_experts
from distillset.synset import SynSet

MODEL = "convnet-d2-w32"


def launch(args: list[str], processes: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    prefix = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes)] if processes > 1 \
        else [sys.executable]
    proc = subprocess.run(prefix + ["-m", "distillset", *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def assert_same(a: SynSet, b: SynSet) -> None:
    scale = float(a.images.abs().max())
    assert (a.images - b.images).abs().max() <= 1e-6 * scale
    for name in ("soft_labels", "lr"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None)
        if x is not None:
            assert torch.allclose(x, y, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("method", ["dsa", "dm"])
def test_two_processes_give_the_single_process_synset(tmp_path, method):
    args = ["condense", "--method", method, "--dataset", "digits", "--ipc", "2", "--model", MODEL, "--iterations", "3",
            "--no-progress"] + (["--no-compile"] if method == "dsa" else [])
    two = launch(args + ["--out", str(tmp_path / "two")], 2)
    launch(args + ["--out", str(tmp_path / "one")], 1)
    assert "2 processes" in two.stderr and two.stderr.count("wrote ") == 1  # rank 1 stays silent
    assert_same(SynSet.load(tmp_path / "one" / "synset.safetensors"), SynSet.load(tmp_path / "two" / "synset.safetensors"))
    record = json.loads((tmp_path / "two" / "run.json").read_text())
    assert record["timings_s"]["processes"] == 2


def test_ten_dc_iterations_under_two_processes_are_bitwise_the_single_process_run(tmp_path):
    """Over iterations that matter (10 outer iterations of 2 matching steps and 50 inner epochs each, where a
    last-bit difference grows to whole units) the 2-process run IS the 1-process run at the same per-process
    thread count, bit for bit: class shards touch disjoint images, so the reduction adds exact zeros."""
    args = ["condense", "--method", "dsa", "--dataset", "digits", "--ipc", "2", "--model", MODEL, "--iterations", "10",
            "--no-compile", "--no-progress", "--threads", "1"]
    launch(args + ["--out", str(tmp_path / "two")], 2)
    launch(args + ["--out", str(tmp_path / "one")], 1)
    one, two = (SynSet.load(tmp_path / d / "synset.safetensors") for d in ("one", "two"))
    assert torch.equal(one.images, two.images)


def test_datm_trajectories_split_across_processes(tmp_path):
    experts = tmp_path / "experts"
    train_experts("digits", experts, ExpertConfig(model=MODEL, experts=2, epochs=2, lr=0.1), log=lambda m: None)
    args = ["condense", "--method", "datm", "--dataset", "digits", "--ipc", "1", "--model", MODEL, "--experts-dir", str(experts),
            "--syn-steps", "3", "--expert-epochs", "1", "--max-start-epoch", "1", "--trajectories", "2", "--iterations", "3",
            "--no-progress"]
    launch(args + ["--out", str(tmp_path / "two")], 2)
    launch(args + ["--out", str(tmp_path / "one")], 1)
    assert_same(SynSet.load(tmp_path / "one" / "synset.safetensors"), SynSet.load(tmp_path / "two" / "synset.safetensors"))


def test_a_run_checkpointed_by_one_process_resumes_under_two(tmp_path):
    options = {"compile": False}
    run_condense("dc", "digits", 1, tmp_path / "resumed", model=MODEL, iterations=4, options=options, progress=False,
                 stop_after=2, log=lambda m: None)
    args = ["condense", "--method", "dc", "--dataset", "digits", "--ipc", "1", "--model", MODEL, "--iterations", "4",
            "--no-compile", "--no-progress"]
    two = launch(args + ["--out", str(tmp_path / "resumed")], 2)
    assert "resuming from" in two.stderr
    whole = run_condense("dc", "digits", 1, tmp_path / "whole", model=MODEL, iterations=4, options=options, progress=False,
                         log=lambda m: None)
    assert_same(whole.synset, SynSet.load(tmp_path / "resumed" / "synset.safetensors"))


def test_evaluation_spreads_runs_and_gathers_every_accuracy(tmp_path):
    run_condense("dm", "digits", 2, tmp_path / "dm", model=MODEL, iterations=2, progress=False, log=lambda m: None)
    args = ["evaluate", str(tmp_path / "dm" / "synset.safetensors"), "--models", MODEL, "--runs", "3", "--epochs", "5", "--json"]
    two = json.loads(launch(args, 2).stdout)
    one = json.loads(launch(args, 1).stdout)
    assert two["results"] == one["results"] and len(one["results"][MODEL]["accs"]) == 3


def test_commands_that_are_not_distributed_say_so(monkeypatch, capsys):
    from distillset.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["coreset", "--method", "random", "--dataset", "digits", "--ipc", "1", "--out", "unused"]) == 2
    assert "does not run under torchrun" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["dsa", "dm"])
def test_more_processes_than_classes_give_the_single_process_synset(tmp_path, digits, method):
    """3 gloo processes on a 2-class dataset: the idle rank contributes a zero gradient instead of failing in
    backward (and leaving its peers waiting in the reduction)."""
    import numpy as np

    keep = np.isin(digits.train_labels, [0, 1])
    np.savez(tmp_path / "two.npz", x=digits.train_images[keep][:, 0], y=digits.train_labels[keep])
    args = ["condense", "--method", method, "--dataset", f"npz:{tmp_path / 'two.npz'}", "--ipc", "1", "--model", MODEL,
            "--iterations", "2", "--no-progress"] + (["--no-compile"] if method == "dsa" else [])
    launch(args + ["--out", str(tmp_path / "three")], 3)
    launch(args + ["--out", str(tmp_path / "one")], 1)
    assert_same(SynSet.load(tmp_path / "one" / "synset.safetensors"), SynSet.load(tmp_path / "three" / "synset.safetensors"))


def test_a_fixed_gpu_index_under_torchrun_is_refused(monkeypatch):
    from distillset.distributed import init_from_environment
    from distillset.errors import DistillsetError

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(DistillsetError, match="would put every rank on one GPU"):
        init_from_environment("cuda:1")
