"""The experiment runner: a tiny grid end to end (as CI runs it), resume, and bad configs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from distillset.cli import main
from distillset.errors import DistillsetError
from distillset.data import DATASETS
from distillset.experiment import ExperimentConfig, load_experiment, markdown_table, summarise

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_tiny_experiment_end_to_end_and_resume(tmp_path, capsys):
    code = main(["experiment", str(CONFIGS / "tiny.yaml"), "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    for method in ("random", "dc", "dm"):
        assert f"| digits | {method} | 1 | convnet |" in out and f"| digits | {method} | 1 | mlp |" in out
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("dataset,method,ipc,model,mean") and len(csv_lines) == 7
    cells = json.loads((tmp_path / "cells.json").read_text())
    assert set(cells) == {"digits/random/1/0", "digits/dc/1/0", "digits/dm/1/0"}
    start = time.perf_counter()
    assert main(["experiment", str(CONFIGS / "tiny.yaml"), "--out", str(tmp_path)]) == 0
    assert time.perf_counter() - start < 10  # everything recorded: nothing recomputed
    assert json.loads((tmp_path / "cells.json").read_text()) == cells


def test_every_shipped_config_loads():
    for path in CONFIGS.glob("*.yaml"):
        config = load_experiment(path)
        assert config.datasets and config.methods and config.ipc
        assert set(config.datasets) <= set(DATASETS), f"{path.name} names a dataset the registry lacks"


def test_published_values_sit_beside_ours():
    config = ExperimentConfig(name="t", datasets=["mnist"], methods=["dc"], ipc=[1], runs=2)
    cells = {"mnist/dc/1/0": {"accs": {"convnet": [0.9, 0.8]}, "make_seconds": 60, "eval_seconds": 60, "epochs": 300, "augment": False}}
    table = markdown_table(config, summarise(config, cells))
    assert "| mnist | dc | 1 | convnet | 85.00 +- 5.00 | 91.7 | 2 | 300 ep | 2.0 min |" in table


def test_bad_experiment_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: [digits]\nmethods: [dc, magic]\nipc: [1]\n")
    with pytest.raises(DistillsetError, match="unknown image method 'magic'"):
        load_experiment(bad)
    bad.write_text("datasets: [digits]\nmethods: [dc]\nipc: [1]\ncolour: blue\neval: {speed: 3}\n")
    with pytest.raises(DistillsetError, match="unknown key.*colour.*eval.speed"):
        load_experiment(bad)
    bad.write_text("methods: [dc]\n")
    with pytest.raises(DistillsetError, match="needs datasets, ipc"):
        load_experiment(bad)


def test_an_interrupted_evaluation_resumes_at_its_next_run(tmp_path, monkeypatch):
    from distillset import experiment
    from distillset.evaluation import protocol

    config = ExperimentConfig(name="cut", datasets=["digits"], methods=["random"], ipc=[1], models=["mlp", "convnet-d2-w32"],
                              runs=2, epochs=3)
    whole = experiment.run_experiment(config, out=tmp_path / "whole", log=lambda m: None)
    real_evaluate, calls = protocol.evaluate_synset, []

    def cut_after_three(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(kwargs["run_indices"])
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(protocol, "evaluate_synset", cut_after_three)
    with pytest.raises(KeyboardInterrupt):
        experiment.run_experiment(config, out=tmp_path / "cut", log=lambda m: None)
    progress = json.loads((tmp_path / "cut" / "runs.json").read_text())["digits/random/1/0"]
    assert set(progress["runs"]["mlp"]) == {"0", "1"} and set(progress["runs"]["convnet-d2-w32"]) == {"0"}
    calls.clear()
    monkeypatch.setattr(protocol, "evaluate_synset", lambda *a, **k: calls.append(k["run_indices"]) or real_evaluate(*a, **k))
    resumed = experiment.run_experiment(config, out=tmp_path / "cut", log=lambda m: None)
    assert calls == [[1]]  # only the run that was cut off
    cut_cells = json.loads((tmp_path / "cut" / "cells.json").read_text())
    whole_cells = json.loads((tmp_path / "whole" / "cells.json").read_text())
    assert cut_cells["digits/random/1/0"]["accs"] == whole_cells["digits/random/1/0"]["accs"]
    assert json.loads((tmp_path / "cut" / "runs.json").read_text()) == {}  # a finished cell leaves no progress behind
    accuracy_columns = [line.split("|")[5] for line in whole.splitlines()[4:]]
    assert [line.split("|")[5] for line in resumed.splitlines()[4:]] == accuracy_columns
