"""The evaluation suite: validation-split choices, label modes (teacher), robust scores, importing other tools' sets."""

from __future__ import annotations

import json
import os

import pytest
import torch

import distillset as ds
from distillset.cli import main
from distillset.errors import DistillsetError
from distillset.evaluation.choice import candidates, choose, validation_split

MODEL = "convnet-d2"


def one_line_error(code: int, err: str, *words: str) -> None:
    lines = [line for line in err.strip().splitlines() if line]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("distillset: error:"), err
    assert all(w in lines[0] for w in words), lines[0]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A random digits set and a one-member pool trained on digits (the teacher)."""
    root = tmp_path_factory.mktemp("suite")
    ds.run_coreset("random", "digits", 2, root / "r", log=lambda m: None)
    assert main(["train-pool", "--dataset", "digits", "--models", MODEL, "--epochs", "2", "--out", str(root / "pool")]) == 0
    return root


def test_the_validation_split_is_balanced_seeded_and_from_training_images(digits):
    held = validation_split(digits.train_labels, 0.1, seed=0)
    assert held.tolist() == validation_split(digits.train_labels, 0.1, seed=0).tolist()
    assert held.tolist() != validation_split(digits.train_labels, 0.1, seed=1).tolist()
    counts = torch.bincount(torch.as_tensor(digits.train_labels[held]), minlength=10)
    assert counts.min() >= 1 and counts.max() - counts.min() <= 2
    with pytest.raises(DistillsetError, match="--val-fraction"):
        validation_split(digits.train_labels, 1.5, 0)


def test_choose_takes_the_best_validation_score_and_keeps_every_score():
    options = candidates({"lr": [0.1, 0.01], "epochs": [5]})
    assert options == [{"lr": 0.1, "epochs": 5}, {"lr": 0.01, "epochs": 5}]
    chosen, scored = choose(options, lambda o: {0.1: 0.5, 0.01: float("nan")}[o["lr"]])
    assert chosen == {"lr": 0.1, "epochs": 5} and scored[1]["validation_accuracy"] != scored[1]["validation_accuracy"]
    assert choose([{"a": 1}, {"a": 2}], lambda o: 0.7)[0] == {"a": 1}  # equals: the first


def test_grids_are_chosen_on_validation_and_recorded(made, capsys):
    args = ["evaluate", str(made / "r" / "synset.safetensors"), "--models", MODEL, "--runs", "2", "--epochs", "20", "--json"]
    one_line_error(main(args + ["--lr-grid", "0.01,0.1"]), capsys.readouterr().err, "needs a validation split")
    assert main(args + ["--lr-grid", "0.001,0.05", "--val-fraction", "0.1"]) == 0
    out = json.loads(capsys.readouterr().out)
    selection = out["config"]["selection"][MODEL]
    best = max(selection["candidates"], key=lambda c: c["validation_accuracy"])
    assert selection["chosen"] == {"lr": best["lr"]} and out["config"]["lr"] == best["lr"]
    assert selection["val_images"] > 0 and len(out["results"][MODEL]["accs"]) == 2


def test_teacher_labels_train_by_distillation_and_foreign_teachers_are_refused(made, tmp_path, capsys):
    base = ["evaluate", str(made / "r" / "synset.safetensors"), "--models", MODEL, "--runs", "1", "--epochs", "30", "--json"]
    assert main(base + ["--labels", "teacher", "--teacher", str(made / "pool")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["labels"] == "teacher" and out["config"]["teacher"] and out["protocol"][MODEL]["labels"] == "teacher"
    one_line_error(main(base + ["--labels", "teacher"]), capsys.readouterr().err, "needs --teacher")
    one_line_error(main(base + ["--teacher", str(made / "pool")]), capsys.readouterr().err, "--labels teacher only")
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "other.npz", x=rng.integers(0, 255, (40, 8, 8), dtype=np.uint8), y=np.arange(40) % 10,
             x_test=rng.integers(0, 255, (20, 8, 8), dtype=np.uint8), y_test=np.arange(20) % 10)
    assert main(["train-pool", "--dataset", f"npz:{tmp_path / 'other.npz'}", "--models", MODEL, "--epochs", "1", "--out",
                 str(tmp_path / "foreign")]) == 0
    capsys.readouterr()
    one_line_error(main(base + ["--labels", "teacher", "--teacher", str(tmp_path / "foreign")]), capsys.readouterr().err,
                   "was trained on npz:")


def test_score_reports_every_figure_with_the_same_protocol(made, capsys):
    code = main(["score", str(made / "r" / "synset.safetensors"), "--model", MODEL, "--runs", "2", "--epochs", "15",
                 "--teacher", str(made / "pool"), "--full-epochs", "2", "--full-runs", "1", "--json"])
    assert code == 0
    s = json.loads(capsys.readouterr().out)
    for key in ("hard", "soft", "random_hard", "random_soft", "full", "hlr", "ior", "ars", "bytes", "protocol"):
        assert key in s
    assert s["hlr"] == pytest.approx(s["full"] - s["hard"]) and s["ior"] == pytest.approx(s["soft"] - s["random_soft"])
    assert s["bytes"] == 20 * 64 * 4 + 20 * 8  # 20 float32 8x8 images and their int64 labels
    assert s["protocol"]["epochs"] == 15 and s["protocol"]["teacher"]
    assert 0 <= s["random_hard"] <= 100 and s["ars"]["mean"] == pytest.approx(
        (s["ars"]["gap_with_augmentation"] + s["ars"]["gap_without_augmentation"]) / 2)


def test_a_random_baseline_that_cannot_be_built_is_named(tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "tiny.npz", x=rng.integers(0, 255, (6, 4, 4), dtype=np.uint8), y=np.array([0, 0, 0, 1, 1, 1]),
             x_test=rng.integers(0, 255, (4, 4, 4), dtype=np.uint8), y_test=np.array([0, 1, 0, 1]))
    ds.run_coreset("random", f"npz:{tmp_path / 'tiny.npz'}", 3, tmp_path / "s", log=lambda m: None)
    from distillset.synset import SynSet

    synset = SynSet.load(tmp_path / "s" / "synset.safetensors")
    synset.images, synset.labels = torch.cat([synset.images, synset.images[:1]]), torch.cat([synset.labels, synset.labels[:1]])
    synset.save(tmp_path / "big.safetensors")  # 4 images of class 0, which has 3
    code = main(["score", str(tmp_path / "big.safetensors"), "--model", "mlp", "--runs", "1", "--epochs", "1", "--no-full"])
    one_line_error(code, capsys.readouterr().err, "needs 4 images of class 0, which has only 3")


def test_other_tools_sets_import_and_code_in_a_file_never_runs(made, tmp_path, capsys):
    from distillset.synset import SynSet

    synset = SynSet.load(made / "r" / "synset.safetensors")
    torch.save({"data": [[synset.images, synset.labels]], "accs_all_exps": {"ConvNet": [0.5]}}, tmp_path / "res.pt")
    out = tmp_path / "dc.safetensors"
    assert main(["import", str(tmp_path / "res.pt"), "--from", "dc", "--dataset", "digits", "--out", str(out)]) == 0
    imported = SynSet.load(out)
    assert torch.equal(imported.images, synset.images) and imported.config["imported_from"] == "dc"
    assert imported.config["evaluation"]["augment"] == "dc" and len(imported.config["sha256"]) == 64

    torch.save(synset.images, tmp_path / "images_best.pt")
    torch.save(torch.randn(len(synset), 10), tmp_path / "labels_best.pt")
    torch.save(torch.tensor(0.03), tmp_path / "lr_best.pt")
    assert main(["import", str(tmp_path / "images_best.pt"), "--from", "datm", "--dataset", "digits", "--labels",
                 str(tmp_path / "labels_best.pt"), "--lr", str(tmp_path / "lr_best.pt"), "--out", str(tmp_path / "d.safetensors")]) == 0
    datm = SynSet.load(tmp_path / "d.safetensors")
    assert datm.soft_labels.shape == (20, 10) and float(datm.lr) == pytest.approx(0.03) and datm.method == "datm"

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"data": [[synset.images, Payload()]]}, tmp_path / "evil.pt")
    capsys.readouterr()
    code = main(["import", str(tmp_path / "evil.pt"), "--from", "dc", "--dataset", "digits", "--out", str(tmp_path / "e.safetensors")])
    one_line_error(code, capsys.readouterr().err, "would run code", "nothing was executed")
    assert not marker.exists() and not (tmp_path / "e.safetensors").exists()
    torch.save(torch.zeros(20, 1, 28, 28) - 1, tmp_path / "wrong.pt")
    code = main(["import", str(tmp_path / "wrong.pt"), "--from", "mtt", "--dataset", "digits", "--out", str(tmp_path / "w.safetensors")])
    one_line_error(code, capsys.readouterr().err, "do not fit the dataset's [N, 1, 8, 8]")


def test_compare_puts_sets_side_by_side_with_shared_baselines(made, tmp_path, capsys):
    path = str(made / "r" / "synset.safetensors")
    ds.run_coreset("herding", "digits", 2, tmp_path / "h", log=lambda m: None)
    args = ["compare", path, str(tmp_path / "h" / "synset.safetensors"), "--model", MODEL, "--runs", "1", "--epochs", "5", "--no-full"]
    assert main(args + ["--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert [s["method"].split(":")[-1] for s in scores] == ["random", "herding"]
    assert scores[0]["random_hard"] == scores[1]["random_hard"] and scores[0]["full"] is None and scores[0]["hlr"] is None
    assert main(args) == 0
    table = capsys.readouterr().out
    assert table.count("\n| ") == 2 and table.startswith("| set |") and "random |" in table and "herding |" in table


def test_a_score_cut_off_resumes_at_its_next_network_with_the_same_figures(made, tmp_path, monkeypatch):
    """Every network's accuracy is stored as it ends: a score interrupted after some networks trains only the
    rest on the next call, and ends with the figures of an uninterrupted one."""
    from distillset.evaluation import score as score_module
    from distillset.evaluation.score import Scorer

    path = made / "r" / "synset.safetensors"
    options = dict(model=MODEL, runs=2, epochs=4, full=False)
    whole = Scorer(cache=tmp_path / "a", **options).score(path)

    real_each_run, trained = score_module.each_run, []

    def cut_after_three(*args, **kwargs):
        for outcome in real_each_run(*args, **kwargs):
            trained.append(outcome[0])
            yield outcome
            if len(trained) == 3:
                raise KeyboardInterrupt

    monkeypatch.setattr(score_module, "each_run", cut_after_three)
    with pytest.raises(KeyboardInterrupt):
        Scorer(cache=tmp_path / "b", **options).score(path)
    monkeypatch.setattr(score_module, "each_run", real_each_run)
    counted: list[int] = []

    def counting(*args, **kwargs):
        for outcome in real_each_run(*args, **kwargs):
            counted.append(outcome[0])
            yield outcome

    monkeypatch.setattr(score_module, "each_run", counting)
    resumed = Scorer(cache=tmp_path / "b", **options).score(path)
    arms = 4  # hard and random hard without augmentation (the set's own), and both with DSA (the robustness arm)
    assert len(counted) == arms * options["runs"] - 3
    assert {k: resumed[k] for k in ("hard", "random_hard", "ars")} == {k: whole[k] for k in ("hard", "random_hard", "ars")}
    counted.clear()
    assert Scorer(cache=tmp_path / "b", **options).score(path)["hard"] == whole["hard"] and not counted


def test_a_damaged_or_foreign_score_entry_is_measured_again(made, tmp_path, monkeypatch):
    """A stored arm that is not readable JSON, or that was stored for another arm, never supplies accuracies: that
    arm's networks are trained again, the others are read back, and the figures are those of a clean score."""
    from distillset.evaluation import score as score_module
    from distillset.evaluation.score import Scorer

    path = made / "r" / "synset.safetensors"
    options = dict(model=MODEL, runs=2, epochs=4, full=False, cache=tmp_path)
    clean = Scorer(**options).score(path)
    stores = sorted((tmp_path / "score-runs").glob("*.json"))
    assert len(stores) == 4
    stores[0].write_text('{"arm": ')  # an interrupted copy
    foreign = json.loads(stores[1].read_text())
    foreign["arm"] = {**foreign["arm"], "seed": 99}
    stores[1].write_text(json.dumps(foreign))

    real_each_run, trained = score_module.each_run, []

    def counting(*args, **kwargs):
        for outcome in real_each_run(*args, **kwargs):
            trained.append(outcome[0])
            yield outcome

    monkeypatch.setattr(score_module, "each_run", counting)
    again = Scorer(**options).score(path)
    assert len(trained) == 2 * options["runs"]
    assert {k: again[k] for k in ("hard", "random_hard", "ars")} == {k: clean[k] for k in ("hard", "random_hard", "ars")}


def test_networks_another_process_stores_during_an_arm_are_kept(made, tmp_path, monkeypatch):
    """Two scorers sharing a cache (two sets with the same random baseline) each write the arm's file as their
    networks end: a write keeps what the other stored meanwhile instead of overwriting it."""
    from distillset.evaluation import score as score_module
    from distillset.evaluation.score import Scorer

    path = made / "r" / "synset.safetensors"
    real_each_run = score_module.each_run

    def with_a_neighbour(*args, **kwargs):
        for outcome in real_each_run(*args, **kwargs):
            for store in (tmp_path / "score-runs").glob("*.json"):  # the neighbour stores its run 7 of every arm
                entry = json.loads(store.read_text())
                store.write_text(json.dumps({**entry, "runs": {**entry["runs"], "7": 0.5}}))
            yield outcome

    monkeypatch.setattr(score_module, "each_run", with_a_neighbour)
    Scorer(model=MODEL, runs=2, epochs=2, full=False, cache=tmp_path).score(path)
    stores = sorted((tmp_path / "score-runs").glob("*.json"))
    assert len(stores) == 4
    for store in stores:
        assert sorted(json.loads(store.read_text())["runs"]) == ["0", "1", "7"]
