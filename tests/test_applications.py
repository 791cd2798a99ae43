"""The DC paper's applications on digits: class-incremental learning with a memory, and NAS on a proxy."""

from __future__ import annotations

import json

import pytest
import torch

from distillset.data import real_data
from distillset.errors import DistillsetError
from distillset.applications import continual as cl
from distillset.applications.nas import NASConfig, run_nas, search_data, search_space, train_steps, validation_split
from distillset.models import build_model
from distillset.synset import SynSet

MODEL = "convnet-d2-w32"  # the papers' depth-3 ConvNet trains poorly on 8x8 digits (BENCHMARKS.md)


def test_class_orders_and_steps():
    orders = cl.class_orders(10, 3, seed=0)
    assert orders[0] == list(range(10)) and sorted(orders[1]) == list(range(10)) and orders[1] != orders[2]
    assert orders == cl.class_orders(10, 3, seed=0)
    assert cl.split_steps(list(range(10)), 5) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert [len(s) for s in cl.split_steps(list(range(10)), 3)] == [4, 3, 3]
    with pytest.raises(DistillsetError, match="--steps must be between 1 and the number of classes"):
        cl.split_steps(list(range(10)), 11)


def test_a_step_memory_is_built_from_that_steps_classes_only(digits):
    real = real_data(digits, "train")
    config = cl.ContinualConfig(dataset="digits", ipc=3, model=MODEL, iterations=2)
    for method in ("herding", "dm"):
        memory = cl.build_memory(method, real, [7, 2], config, seed=0)
        assert memory.num_classes == 10 and sorted(memory.labels.tolist()) == [2, 2, 2, 7, 7, 7]
    herded = cl.build_memory("herding", real, [7, 2], config, seed=0)
    pool = real.images[(real.labels == 7) | (real.labels == 2)]
    for image in herded.images:  # selected, real images of those classes
        assert (pool == image).flatten(1).all(1).any()
    with pytest.raises(DistillsetError, match="unknown image method 'lottery'"):
        cl.build_memory("lottery", real, [0], config, seed=0)


def test_init_sets_where_a_condensed_memory_starts(digits):
    real = real_data(digits, "train")
    pool = real.images[(real.labels == 7) | (real.labels == 2)]

    def share_of_real_images(init: str | None) -> float:
        config = cl.ContinualConfig(dataset="digits", ipc=2, model=MODEL, iterations=1, init=init)
        memory = cl.build_memory("dc", real, [7, 2], config, seed=0)
        assert sorted(memory.labels.tolist()) == [2, 2, 7, 7]
        # one DC iteration moves the images a little; a real start stays far closer to real images than noise
        nearest = torch.cdist(memory.images.flatten(1), pool.flatten(1)).min(1).values
        return float((nearest < 0.5 * pool.flatten(1).norm(dim=1).mean()).float().mean())

    assert share_of_real_images("real") == 1.0
    assert share_of_real_images(None) == 0.0  # DC's own default is noise
    with pytest.raises(DistillsetError, match="unknown --init 'zeros'"):
        cl.run_continual(cl.ContinualConfig(dataset="digits", init="zeros"), "unused")


def test_continual_runs_resumes_and_reports(tmp_path, monkeypatch, capsys):
    from distillset.cli import main

    args = ["continual", "--dataset", "digits", "--steps", "2", "--ipc", "2", "--memory", "random,dm", "--orders", "2",
            "--model", MODEL, "--epochs", "20", "--iterations", "dm=3", "--out", str(tmp_path)]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "| random |" in table and "| dm |" in table and "step 2" in table
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["cells"]) == 2 * 2 * 2
    final = results["cells"]["dm/order1/step1"]
    assert sorted(final["classes_seen"]) == list(range(10)) and final["memory_images"] == 20
    assert all(0.1 < a <= 1 for cell in results["cells"].values() for a in cell["accs"])
    assert (tmp_path / "continual.png").stat().st_size > 1000 and (tmp_path / "results.md").is_file()

    def no_more_work(*a, **k):
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr(cl, "build_memory", no_more_work)
    monkeypatch.setattr(cl, "evaluate_synset", no_more_work)
    assert main(args) == 0  # everything is on disk: resumes without work
    assert main(args[:-4] + ["--epochs", "21", "--out", str(tmp_path)]) == 2  # another configuration is refused
    changed = [a if a != "dm=3" else "dm=4" for a in args]
    assert main(changed) == 2 and "dm used 3 iterations per step, not 4" in capsys.readouterr().err


def test_continual_methods_run_apart_add_up_to_one_table(tmp_path, capsys):
    from distillset.cli import main

    common = ["continual", "--dataset", "digits", "--steps", "2", "--ipc", "2", "--orders", "1", "--model", MODEL,
              "--epochs", "10", "--iterations", "dm=2"]
    assert main(common + ["--memory", "random", "--out", str(tmp_path / "a")]) == 0
    assert main(common + ["--memory", "dm", "--out", str(tmp_path / "b")]) == 0
    merged = cl.merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "all")
    assert merged["config"]["memories"] == ["random", "dm"] and merged["iterations"] == {"random": None, "dm": 2}
    assert len(merged["cells"]) == 2 * 2 and "| dm |" in (tmp_path / "all" / "results.md").read_text()
    # a later method added to a finished folder keeps its cells
    assert main(common + ["--memory", "random,herding", "--out", str(tmp_path / "a")]) == 0
    grown = json.loads((tmp_path / "a" / "results.json").read_text())
    assert grown["config"]["memories"] == ["random", "herding"] and len(grown["cells"]) == 4
    capsys.readouterr()
    longer = [a if a != "10" else "11" for a in common]  # 11 training epochs per step: another protocol
    assert main(longer + ["--memory", "dm", "--out", str(tmp_path / "c")]) == 0
    with pytest.raises(DistillsetError, match="another configuration"):
        cl.merge_runs([tmp_path / "a", tmp_path / "c"], tmp_path / "bad")


def test_class_orders_split_over_processes_measure_what_one_run_does(tmp_path, capsys):
    from distillset.cli import main

    common = ["continual", "--dataset", "digits", "--steps", "2", "--ipc", "2", "--orders", "2", "--model", MODEL,
              "--epochs", "10", "--memory", "random,herding"]
    assert main(common + ["--out", str(tmp_path / "whole")]) == 0
    assert main(common + ["--only-orders", "1", "--out", str(tmp_path / "one")]) == 0
    assert main(common + ["--only-orders", "0", "--out", str(tmp_path / "zero")]) == 0
    one = json.loads((tmp_path / "one" / "results.json").read_text())["cells"]
    assert sorted(one) == ["herding/order1/step0", "herding/order1/step1", "random/order1/step0", "random/order1/step1"]
    merged = cl.merge_runs([tmp_path / "zero", tmp_path / "one"], tmp_path / "all")
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())["cells"]

    def measured(cells: dict) -> dict:  # what was measured, without the timings
        return {k: (c["accs"], c["classes_seen"], c["memory_images"]) for k, c in cells.items()}

    assert measured(merged["cells"]) == measured(whole)
    capsys.readouterr()
    assert main(common + ["--only-orders", "2", "--out", str(tmp_path / "bad")]) == 2
    assert "--only-orders takes order indices from 0 to 1" in capsys.readouterr().err


def test_search_spaces():
    assert len(search_space("small")) == 24 and len(search_space("medium")) == 96 and len(search_space("paper")) == 720
    assert len(set(search_space("paper"))) == 720
    for name in search_space("paper")[::37]:
        build_model(name, (1, 28, 28), 10)  # every spelled candidate is a valid model name for MNIST shapes
    with pytest.raises(DistillsetError, match="unknown search space"):
        search_space("huge")


def test_validation_split_is_disjoint_and_balanced(digits):
    real = real_data(digits, "train")
    search, held = validation_split(real, 0.1, seed=0)
    assert set(search.tolist()).isdisjoint(held.tolist()) and len(search) + len(held) == len(real.labels)
    counts = torch.bincount(real.labels[held], minlength=10)
    assert counts.min() >= 10 and counts.max() <= 16
    assert torch.equal(held, validation_split(real, 0.1, seed=0)[1])
    searchable = search_data(real, 0.1, seed=0)  # what a proxy may be condensed from: no validation image in it
    assert torch.equal(searchable.images, real.images[search]) and searchable.name == real.name


def test_fractional_epochs_stop_early(digits):
    real = real_data(digits, "train")
    net = build_model(MODEL, real.shape, 10, torch.Generator().manual_seed(0))
    steps = []
    net.register_forward_hook(lambda *a: steps.append(1))
    train_steps(net, real.images, real.labels, 0.5, 256, 0.01, torch.Generator().manual_seed(0))
    assert len(steps) == 3  # half of ceil(1437 / 256) = 6 steps


def test_nas_ranks_a_proxy_against_the_cached_reference(tmp_path, capsys):
    from distillset.cli import main

    messages = []
    config = NASConfig(dataset="digits", proxy="random", ipc=5, proxy_epochs=30, reference_epochs=2, final_epochs=2)
    result = run_nas(config, tmp_path, log=messages.append)
    assert any("cannot take [1, 8, 8] inputs" in m for m in messages)  # depth 4 does not fit 8x8
    assert len(result["scores"]) == 16 and result["chosen"] in result["scores"]
    assert -1 <= result["spearman"] <= 1 and 0.1 < result["chosen_test_accuracy_after_retraining"] <= 1
    assert result["proxy_images"] == 50 and result["memory"]["proxy_tensor_mb"] > 0
    messages.clear()
    whole = run_nas(NASConfig(dataset="digits", proxy="whole", proxy_epochs=0.5, reference_epochs=2, final_epochs=1), tmp_path,
                    log=messages.append)
    assert not any(m.startswith("reference:") for m in messages)  # the reference ranking was reused
    assert whole["proxy"] == "whole-0.5ep"
    code = main(["nas", "--dataset", "digits", "--proxy", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path)])
    assert code == 2 and "neither random, whole nor an existing SynSet" in capsys.readouterr().err


def test_nas_with_a_synset_proxy(tmp_path, digits, capsys):
    from distillset.cli import main
    from distillset.driver import condense_real

    synset = condense_real("dm", real_data(digits, "train"), 2, model=MODEL, iterations=2)
    synset.save(tmp_path / "dm.safetensors")
    args = ["nas", "--dataset", "digits", "--proxy", str(tmp_path / "dm.safetensors"), "--proxy-epochs", "20",
            "--reference-epochs", "1", "--final-epochs", "1", "--out", str(tmp_path / "nas"), "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["proxy"] == "dm-ipc2" and result["proxy_images"] == 20
    assert SynSet.load(tmp_path / "dm.safetensors").method == "dm"


def test_a_partly_measured_step_says_how_many_orders_it_rests_on():
    assert cl.step_cell_text(0.9393, 0.0, 1, orders=3) == "93.93 (1 of 3 orders)"
    assert cl.step_cell_text(0.95, 0.01, 2, orders=3) == "95.00 +- 1.00 (2 of 3 orders)"
    assert cl.step_cell_text(0.95, 0.01, 3, orders=3) == "95.00 +- 1.00"
    assert cl.step_cell_text(float("nan"), 0.0, 0, orders=3) == "-"
