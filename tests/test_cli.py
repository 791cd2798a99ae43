"""End-to-end runs of the command line, and one clear line with exit code 2 for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from distillset.cli import main
from distillset.synset import SynSet


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, pattern):
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("distillset: error:"), err
    assert pattern in lines[0], lines[0]
    assert "Traceback" not in err


def test_coreset_then_evaluate_on_mnist(capsys, tmp_path, data_root):
    out = tmp_path / "r10"
    code, _, err = run(capsys, "coreset", "--method", "random", "--dataset", "mnist", "--ipc", 2, "--data-root", data_root, "--out", out)
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {"synset.safetensors", "run.json", "grid.png"}
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete" and record["config"]["ipc"] == 2 and "method" in record["timings_s"]
    synset = SynSet.load(out / "synset.safetensors")
    assert synset.images.shape == (20, 1, 28, 28) and synset.labels.tolist() == sorted(list(range(10)) * 2)
    code, _, err = run(capsys, "coreset", "--method", "random", "--dataset", "mnist", "--ipc", 2, "--data-root", data_root, "--out", out)
    assert code == 0 and "nothing to do" in err
    code, _, err = run(capsys, "coreset", "--method", "random", "--dataset", "mnist", "--ipc", 3, "--data-root", data_root, "--out", out)
    assert_one_line_error(code, err, "different configuration")
    code, out_text, err = run(capsys, "evaluate", out / "synset.safetensors", "--models", "mlp", "--runs", 2, "--epochs", 50,
                              "--data-root", data_root, "--json")
    assert code == 0, err
    result = json.loads(out_text)
    assert result["dataset"] == "mnist"
    mlp = result["results"]["mlp"]
    assert set(mlp) == {"mean", "std", "accs"} and len(mlp["accs"]) == 2 and all(0.1 < a <= 1 for a in mlp["accs"])


def test_same_seed_same_synset(capsys, tmp_path):
    for name in ("a", "b"):
        assert run(capsys, "coreset", "--method", "random", "--dataset", "digits", "--ipc", 3, "--seed", 7, "--out", tmp_path / name)[0] == 0
    a, b = SynSet.load(tmp_path / "a" / "synset.safetensors"), SynSet.load(tmp_path / "b" / "synset.safetensors")
    assert torch.equal(a.images, b.images)
    run(capsys, "coreset", "--method", "random", "--dataset", "digits", "--ipc", 3, "--seed", 8, "--out", tmp_path / "c")
    assert not torch.equal(a.images, SynSet.load(tmp_path / "c" / "synset.safetensors").images)


def test_evaluate_table_and_show(capsys, tmp_path):
    run(capsys, "coreset", "--method", "random", "--dataset", "digits", "--ipc", 2, "--out", tmp_path / "d")
    code, out, err = run(capsys, "evaluate", tmp_path / "d" / "synset.safetensors", "--runs", 1, "--epochs", 2)
    assert code == 0 and "| convnet |" in out and "run 1/1" in err
    code, _, err = run(capsys, "show", tmp_path / "d" / "synset.safetensors", "--out", tmp_path / "g.png", "--folder", tmp_path / "f")
    assert code == 0 and (tmp_path / "g.png").stat().st_size > 0 and len(list((tmp_path / "f").rglob("*.png"))) == 20


def test_bad_inputs_give_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("DISTILLSET_DATA", raising=False)
    cases = [
        (("coreset", "--method", "random", "--dataset", "mnsit", "--ipc", 1, "--out", tmp_path / "x"), "unknown dataset 'mnsit'"),
        (("coreset", "--method", "best", "--dataset", "digits", "--ipc", 1, "--out", tmp_path / "x"), "unknown image selection method 'best'; valid image selection methods: dq, forgetting, herding, kcenter, random"),
        (("coreset", "--method", "random", "--dataset", "mnist", "--ipc", 1, "--data-root", tmp_path / "none", "--out", tmp_path / "x"), "looked for"),
        (("coreset", "--method", "random", "--dataset", "digits", "--ipc", 1000, "--out", tmp_path / "x"), "ipc 1000 is larger than class"),
        (("coreset", "--method", "random", "--dataset", "digits", "--ipc", 1, "--device", "cuda:0", "--out", tmp_path / "x"), "no CUDA GPU"),
        (("condense", "--method", "gm", "--dataset", "digits", "--ipc", 1, "--out", tmp_path / "x"),
         "unknown image condensation method 'gm'; valid image condensation methods: datm, dc, dd, dm, dsa, mtt"),
        (("condense", "--method", "mtt", "--dataset", "digits", "--ipc", 1, "--out", tmp_path / "x"), "--method mtt needs --experts-dir"),
        (("evaluate", tmp_path / "missing.safetensors"), "no such file"),
    ]
    if torch.cuda.is_available():
        cases = [c for c in cases if "cuda:0" not in c[0]]
    for argv, pattern in cases:
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, pattern)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 100)
    assert_one_line_error(*run(capsys, "evaluate", tmp_path / "junk.safetensors")[::2], "not a readable safetensors file")
    run(capsys, "coreset", "--method", "random", "--dataset", "digits", "--ipc", 1, "--out", tmp_path / "ok")
    code, _, err = run(capsys, "evaluate", tmp_path / "ok" / "synset.safetensors", "--models", "convnet,resnet99", "--epochs", 1)
    assert_one_line_error(code, err, "unknown model 'resnet99'")


def test_argument_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["coreset", "--method", "random", "--dataset", "digits", "--ipc", "0", "--out", "x"])
    assert info.value.code == 2


def test_demo_and_console_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "distillset", "demo", "--runs", "1", "--epochs", "3", "--dc-iterations", "2",
                           "--out", str(tmp_path / "demo")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "| random coreset, 10/class | 100 |" in proc.stdout and "whole training split" in proc.stdout
    assert "| DC (gradient matching), 1/class, 2 iterations | 10 |" in proc.stdout
    assert (tmp_path / "demo" / "random-ipc10" / "grid.png").exists()


def test_condense_cli_with_yaml_config(capsys, tmp_path):
    config = tmp_path / "dc.yaml"
    config.write_text("iterations: 2\ninit: real\ndistance: mse\ncompile: false\n")
    code, _, err = run(capsys, "condense", "--method", "dc", "--dataset", "digits", "--ipc", 1, "--config", config,
                       "--no-progress", "--out", tmp_path / "dc")
    assert code == 0, err
    synset = SynSet.load(tmp_path / "dc" / "synset.safetensors")
    assert synset.method == "dc" and synset.config["iterations"] == 2 and synset.config["distance"] == "mse"
    assert synset.config["init"] == "real" and synset.config["outer_loop"] == 1
    (tmp_path / "bad.yaml").write_text("iterations: 2\nlearning_rate: 3\n")
    code, _, err = run(capsys, "condense", "--method", "dc", "--dataset", "digits", "--ipc", 1, "--config", tmp_path / "bad.yaml",
                       "--out", tmp_path / "dc2")
    assert_one_line_error(code, err, "unknown option(s) learning_rate")
