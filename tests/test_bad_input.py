"""Bad input is refused in one line (exit 2), never a silent wrong result; run folders stay consistent."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import load_file, save_file

import distillset as ds
from distillset.cli import main
from distillset.errors import DistillsetError
from distillset.runner import RunLock
from distillset.synset import read_safetensors


def one_line_error(code: int, err: str, *words: str) -> None:
    lines = [line for line in err.strip().splitlines() if line]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("distillset: error:"), err
    assert all(w in lines[0] for w in words), lines[0]


@pytest.fixture()
def saved_set(tmp_path, digits):
    synset = ds.make_coreset("random", ds.real_data(digits, "train"), 1)
    path = tmp_path / "set.safetensors"
    synset.save(path)
    return path


def rewrite_metadata(path, **changes) -> None:
    tensors, meta = load_file(str(path)), read_safetensors(path)[1]
    save_file(tensors, str(path), metadata={**meta, **changes})


@pytest.mark.parametrize("key, value, words", [
    ("mean", "[NaN]", ("mean/std must be finite",)),
    ("std", "[Infinity]", ("mean/std must be finite",)),
    ("std", "[1e-30]", ("std entries must be at least",)),
    ("std", "[0.2, 0.3]", ("mean/std have",)),
    ("num_classes", "300000", ("num_classes must be between 1 and 100000",)),
    ("class_names", '["a", "b"]', ("class_names must be a list of 10 strings",)),
    ("class_names", '{"a": 1}', ("class_names must be a list of 10 strings",)),
])
def test_a_set_with_bad_metadata_is_refused_before_any_training(saved_set, capsys, key, value, words):
    rewrite_metadata(saved_set, **{key: value})
    code = main(["evaluate", str(saved_set), "--runs", "1", "--epochs", "1"])
    one_line_error(code, capsys.readouterr().err, *words)


def test_the_same_set_gives_the_same_bytes_and_the_umask_is_honoured(tmp_path, digits):
    synset = ds.make_coreset("random", ds.real_data(digits, "train"), 2, seed=4)
    old = os.umask(0o022)
    try:
        synset.save(tmp_path / "a.safetensors")
        ds.make_coreset("random", ds.real_data(digits, "train"), 2, seed=4).save(tmp_path / "b.safetensors")
    finally:
        os.umask(old)
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    assert (tmp_path / "a.safetensors").stat().st_mode & 0o777 == 0o644


def test_a_run_folder_in_use_is_refused_and_stale_temporaries_are_cleared(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["coreset", "--method", "random", "--dataset", "digits", "--ipc", "1", "--out", str(out)]
    with RunLock(out):  # another process holds the folder
        one_line_error(main(args), capsys.readouterr().err, "in use by a run of process", str(os.getpid()))
    stale = out / ".synset.safetensors.x1y2.tmp"
    stale.write_bytes(b"half a file")
    assert main(args) == 0
    assert not stale.exists() and "left by an interrupted write" in capsys.readouterr().err
    assert {p.name for p in out.iterdir()} == {"synset.safetensors", "run.json", "grid.png"}  # the lock file is gone too


def test_resuming_with_another_compile_setting_is_refused(tmp_path):
    from distillset.driver import run_condense

    quiet = {"progress": False, "log": lambda m: None}
    assert run_condense("dc", "digits", 1, tmp_path / "r", model="convnet-d2-w32", iterations=3, stop_after=1,
                        options={"compile": False, "batch_real": 16}, **quiet) is None
    with pytest.raises(DistillsetError, match="different configuration"):
        run_condense("dc", "digits", 1, tmp_path / "r", model="convnet-d2-w32", iterations=3,
                     options={"compile": True, "batch_real": 16}, **quiet)


def test_checkpoint_with_a_non_integer_iteration_is_one_line(tmp_path, capsys):
    from distillset.runner import load_checkpoint, save_checkpoint

    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, {"x": torch.zeros(1)}, 1, [0.5], {"m": 1})
    tensors, meta = load_file(str(path)), read_safetensors(path)[1]
    save_file(tensors, str(path), metadata={**meta, "iteration": "one"})
    with pytest.raises(DistillsetError, match="damaged checkpoint"):
        load_checkpoint(path, {"m": 1})


@pytest.mark.parametrize("args, words", [
    (["condense", "--method", "dc", "--dataset", "digits", "--ipc", "1", "--model", "resnet18"], ("cannot train on [1, 8, 8]",)),
    (["condense", "--method", "dc", "--dataset", "digits", "--ipc", "1", "--device", "mps"], ("no usable MPS",)),
    (["condense", "--method", "dm", "--dataset", "digits", "--ipc", "1", "--guide-weight", "3"], ("--guide-models",)),
    (["condense", "--method", "dc", "--dataset", "digits", "--ipc", "1", "--iterations", "0"], ("must be at least 1",)),
    (["condense", "--method", "dc", "--dataset", "digits", "--ipc", "1", "--eval-every", "-1"], ("--eval-every must be 0",)),
    (["condense", "--method", "dc", "--dataset", "digits", "--ipc", "1", "--epochs", "5"], ("--epochs does not apply to --method dc",)),
    (["condense", "--method", "dc", "--dataset", "digits", "--ipc", "0"], ("--ipc", "at least 1")),
    (["experts", "--dataset", "digits", "--lr", "-1"], ("--lr must be positive",)),
    (["experts", "--dataset", "digits", "--momentum", "-1"], ("--momentum",)),
])
def test_meaningless_or_impossible_runs_are_refused_before_any_work(tmp_path, capsys, args, words):
    out = tmp_path / "out"
    try:
        code = main([*args, "--out", str(out)])
    except SystemExit as exc:  # argparse's own refusals exit from inside the parser
        code = exc.code
    one_line_error(code, capsys.readouterr().err, *words)
    assert not out.exists()  # nothing written where the command would write


def test_output_folders_that_cannot_be_one_are_refused(tmp_path, capsys):
    afile = tmp_path / "file"
    afile.write_text("x")
    base = ["coreset", "--method", "random", "--dataset", "digits", "--ipc", "1", "--out"]
    one_line_error(main([*base, str(afile)]), capsys.readouterr().err, "is a file, not a folder")
    one_line_error(main([*base, str(afile / "sub")]), capsys.readouterr().err, "which is a file")
    one_line_error(main([*base, ""]), capsys.readouterr().err, "--out is empty")


def test_a_dsa_strategy_without_dsa_and_a_bad_training_lr_are_refused(digits, saved_set, capsys):
    with pytest.raises(DistillsetError, match="dsa_strategy is set but dsa is off"):
        ds.condense_real("dc", ds.real_data(digits, "train"), 1, iterations=1, options={"dsa_strategy": "color"})
    one_line_error(main(["evaluate", str(saved_set), "--lr", "nan", "--runs", "1", "--epochs", "1"]), capsys.readouterr().err,
                   "the training lr must be a positive number")


def test_data_and_config_files_that_would_crash_are_one_line(tmp_path, capsys):
    import numpy as np

    np.save(tmp_path / "arr.npy", np.zeros((3, 3)))
    np.savez(tmp_path / "big.npz", x=np.zeros((4, 2, 2), np.uint8), y=np.array([0, 1, 1_000_000_000, 0]))
    (tmp_path / "bytes.yaml").write_bytes(bytes(range(128, 256)))
    (tmp_path / "bad.yaml").write_text("a: [1, 2\nb: 3\n")
    (tmp_path / "quoted.yaml").write_text('outer_loop: "2"\nbatch_real: 8\n')
    (tmp_path / "zero.yaml").write_text("batch_real: 0\n")
    cases = [
        (["coreset", "--method", "random", "--dataset", f"npz:{tmp_path / 'arr.npy'}", "--ipc", "1"], "not an .npz archive"),
        (["coreset", "--method", "random", "--dataset", f"npz:{tmp_path / 'big.npz'}", "--ipc", "1"], "with only 4 images"),
        (["condense", "--method", "dc", "--dataset", "digits", "--ipc", "1", "--config", str(tmp_path / "bytes.yaml")],
         "not a text (UTF-8) YAML file"),
        (["condense", "--method", "dc", "--dataset", "digits", "--ipc", "1", "--config", str(tmp_path / "bad.yaml")],
         "is not valid YAML at line 2"),
        (["condense", "--method", "dc", "--dataset", "digits", "--ipc", "1", "--config", str(tmp_path / "quoted.yaml")],
         "option 'outer_loop' must be int, got '2'"),
        (["condense", "--method", "dc", "--dataset", "digits", "--ipc", "1", "--config", str(tmp_path / "zero.yaml")],
         "option 'batch_real' must be >= 1"),
    ]
    for args, words in cases:
        one_line_error(main([*args, "--out", str(tmp_path / "out")]), capsys.readouterr().err, words)
        assert not (tmp_path / "out").exists()


def test_api_inputs_that_would_crash_are_refused(digits, tmp_path):
    import json

    import numpy as np

    from distillset.graph.synset import GraphSynSet
    from distillset.methods.experts import ExpertBuffer, ExpertConfig, train_experts

    synset = ds.make_coreset("random", ds.real_data(digits, "train"), 1)
    with pytest.raises(DistillsetError, match="test split is empty"):
        ds.evaluate_synset(synset, digits.test_images[:0], digits.test_labels[:0], runs=1, epochs=1)
    with pytest.raises(DistillsetError, match="outside the set's classes"):
        ds.evaluate_synset(synset, digits.test_images[:5], np.array([0, 1, 2, 3, 50]), runs=1, epochs=1)
    with pytest.raises(DistillsetError, match="holds no nodes"):
        GraphSynSet(torch.zeros(0, 5), torch.zeros(0, 0), torch.zeros(0, dtype=torch.long), "cora", 7, "x", 0.5, {}).validate()
    train_experts("digits", tmp_path / "e", ExpertConfig(model="convnet-d2-w32", experts=1, epochs=1), log=lambda m: None)
    index = json.loads((tmp_path / "e" / "index.json").read_text())
    for key, words in (("model", "lacks model"), ("config", "lacks config")):
        (tmp_path / "e" / "index.json").write_text(json.dumps({k: v for k, v in index.items() if k != key}))
        with pytest.raises(DistillsetError, match=words):
            ExpertBuffer(tmp_path / "e", "digits", "convnet-d2-w32", (1, 8, 8), 10)
    (tmp_path / "e" / "index.json").write_text(json.dumps({**index, "config": {}}))
    with pytest.raises(DistillsetError, match="is damaged"):
        ExpertBuffer(tmp_path / "e", "digits", "convnet-d2-w32", (1, 8, 8), 10)


def test_image_size_on_a_fixed_shape_dataset_and_an_empty_class_are_named(tmp_path, capsys):
    import numpy as np

    args = ["coreset", "--method", "random", "--dataset", "digits", "--ipc", "1", "--image-size", "16", "--out", str(tmp_path / "o")]
    one_line_error(main(args), capsys.readouterr().err, "--image-size resizes image-folder data")
    np.savez(tmp_path / "gap.npz", x=np.zeros((12, 4, 4), np.uint8), y=np.array([0, 2] * 6))  # class 1 has no image
    args = ["coreset", "--method", "random", "--dataset", f"npz:{tmp_path / 'gap.npz'}", "--ipc", "1", "--out", str(tmp_path / "o")]
    one_line_error(main(args), capsys.readouterr().err, "class 1 ('1') has no training images")


def test_the_feature_network_cache_follows_the_data_content(tmp_path):
    import numpy as np

    from distillset.methods.feature_network import _cache_path

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 255, (40, 4, 4), dtype=np.uint8), np.arange(40) % 2
    np.savez(tmp_path / "d.npz", x=x, y=y)
    first = _cache_path(ds.real_data(ds.load_dataset(f"npz:{tmp_path / 'd.npz'}")), "convnet-d2", 1, 0)
    np.savez(tmp_path / "d.npz", x=255 - x, y=y)  # same name, shape and labels; other images
    second = _cache_path(ds.real_data(ds.load_dataset(f"npz:{tmp_path / 'd.npz'}")), "convnet-d2", 1, 0)
    assert first != second


def test_malformed_release_files_are_one_line(tmp_path, data_root, capsys):
    import pickle
    import shutil
    import struct

    import numpy as np

    from distillset.data import formats

    forged = bytes([0, 0, 0x08, 3]) + b"".join(struct.pack(">I", d) for d in (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)) + b"\0" * 8
    with pytest.raises(DistillsetError, match="truncated"):  # a header whose dimensions overflow 64 bits
        formats.parse_idx(forged, "forged")
    batch = tmp_path / "data_batch_1"
    for labels, words in ((["cat", "dog"], "not a flat list of whole-number labels"), ([[0, 1], [2]], "not a flat list")):
        with open(batch, "wb") as handle:
            pickle.dump({"data": np.zeros((2, 3072), np.uint8), "labels": labels}, handle, protocol=2)
        with pytest.raises(DistillsetError, match=words):
            formats.read_cifar_batches([batch], "labels")
    root = tmp_path / "root"
    shutil.copytree(data_root / "MNIST", root / "MNIST")
    image_file = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    image_file.unlink()
    args = ["coreset", "--method", "random", "--dataset", "mnist", "--ipc", "1", "--data-root", str(root), "--out",
            str(tmp_path / "o")]
    one_line_error(main(args), capsys.readouterr().err, "incomplete", "train-images-idx3-ubyte.gz missing")
    image_file.mkdir()
    one_line_error(main(args), capsys.readouterr().err, "as folder(s), not files")


def test_a_forged_planetoid_matrix_is_refused_before_allocating():
    import numpy as np

    from distillset.graph.data import _CSRState

    def matrix(**state):
        m = _CSRState()
        m.__setstate__({"indptr": np.array([0, 1, 2]), "indices": np.array([0, 1]), "data": np.ones(2), "_shape": (2, 3),
                        **state})
        return m

    assert matrix().dense().tolist() == [[1, 0, 0], [0, 1, 0]]
    for state, words in (({"_shape": (140, 10 ** 8)}, "dense entries"), ({"indptr": np.array([0, 5, 2])}, "row pointers"),
                         ({"indices": np.array([0, 9])}, "column index"), ({"data": np.array(["a", "b"])}, "not numbers")):
        with pytest.raises(DistillsetError, match=words):
            matrix(**state).dense("ind.cora.x")
    bare = _CSRState()
    bare.__setstate__({"indices": np.array([0])})
    with pytest.raises(DistillsetError, match="lacks indptr"):
        bare.dense()


def test_a_decompression_bomb_image_is_refused_from_its_header(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from distillset.data import formats

    (tmp_path / "a").mkdir()
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "a" / "big.png")
    monkeypatch.setenv("DISTILLSET_MAX_IMAGE_PIXELS", "1000")  # a 64x64 image plays the bomb
    with pytest.raises(DistillsetError, match="4,096 pixels, above the limit of 1,000"):
        formats.read_images([(tmp_path / "a" / "big.png", 0)], None, grayscale=True)


def test_planetoid_files_are_checksummed_like_the_image_datasets(tmp_path, data_root):
    import shutil

    from distillset.graph.data import load_graph

    shutil.copytree(data_root / "Planetoid" / "Cora", tmp_path / "Planetoid" / "Cora")
    assert load_graph("cora", tmp_path).num_nodes == 2708
    y = tmp_path / "Planetoid" / "Cora" / "raw" / "ind.cora.y"
    y.write_bytes(y.read_bytes()[:-1] + bytes([y.read_bytes()[-1] ^ 1]))  # one flipped bit
    with pytest.raises(DistillsetError, match="checksum mismatch for .*ind.cora.y"):
        load_graph("cora", tmp_path)
    with pytest.raises(DistillsetError):  # without the check, the damaged file is read (and here fails to parse)
        load_graph("cora", tmp_path, verify=False)


def test_option_errors_name_the_flag_on_the_command_line(tmp_path, capsys):
    code = main(["condense", "--method", "dc", "--dataset", "digits", "--ipc", "1", "--lr-img", "-1", "--out", str(tmp_path / "o")])
    one_line_error(code, capsys.readouterr().err, "option 'lr_img' (--lr-img) must be > 0")


def test_a_guide_pool_given_as_a_file_and_an_unwritable_cache_are_named(tmp_path, capsys, monkeypatch):
    afile = tmp_path / "pool.pt"
    afile.write_bytes(b"not a pool")
    args = ["condense", "--method", "dm", "--dataset", "digits", "--ipc", "1", "--iterations", "1", "--guide-models", str(afile),
            "--out", str(tmp_path / "o")]
    one_line_error(main(args), capsys.readouterr().err, "is a file, not a pool folder")
    assert not (tmp_path / "o").exists()
    monkeypatch.setenv("DISTILLSET_CACHE", str(afile / "cache"))  # under a file: no user can write there
    args = ["coreset", "--method", "herding", "--dataset", "digits", "--ipc", "1", "--out", str(tmp_path / "o")]
    one_line_error(main(args), capsys.readouterr().err, "$DISTILLSET_CACHE", "which is a file")


def test_a_graph_set_of_another_feature_width_is_refused_at_evaluation(tmp_path, data_root, capsys):
    from distillset.graph.synset import GraphSynSet

    adjacency = torch.zeros(7, 7)
    synset = GraphSynSet(torch.rand(7, 5), adjacency, torch.arange(7), "cora", 7, "gcond", 0.5, {})
    synset.save(tmp_path / "g.safetensors")
    code = main(["evaluate", str(tmp_path / "g.safetensors"), "--data-root", str(data_root), "--runs", "1", "--epochs", "1"])
    one_line_error(code, capsys.readouterr().err, "5 features per node but cora has 1433")
