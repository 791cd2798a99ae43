"""The SynSet file: exact contract, round trip, and one clear error for every kind of bad file."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from distillset.errors import DistillsetError
from distillset.synset import FORMAT, SynSet


def make_synset(**overrides) -> SynSet:
    g = torch.Generator().manual_seed(0)
    fields = dict(images=torch.randn(6, 1, 8, 8, generator=g), labels=torch.tensor([0, 0, 1, 1, 2, 2]), dataset="digits",
                  num_classes=3, mean=(0.3,), std=(0.4,), method="test", ipc=2, config={"a": 1})
    fields.update(overrides)
    return SynSet(**fields)


def test_round_trip_with_every_optional_tensor(tmp_path):
    d = 64
    synset = make_synset(soft_labels=torch.randn(6, 3), lr=torch.tensor(0.02), zca_mean=torch.zeros(d), zca_matrix=torch.eye(d),
                         class_names=["a", "b", "c"])
    path = synset.save(tmp_path / "s.safetensors")
    loaded = SynSet.load(path)
    for name in ("images", "labels", "soft_labels", "lr", "zca_mean", "zca_matrix"):
        assert torch.equal(getattr(loaded, name), getattr(synset, name).reshape(getattr(loaded, name).shape)), name
    assert loaded.config == {"a": 1} and loaded.class_names == ["a", "b", "c"] and loaded.ipc == 2
    assert [p.name for p in tmp_path.iterdir()] == ["s.safetensors"]  # the atomic write left no temp file


def test_file_follows_the_contract(tmp_path):
    from safetensors import safe_open

    path = make_synset(lr=torch.tensor(0.01)).save(tmp_path / "s.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
        assert set(handle.keys()) == {"images", "labels", "lr"}
        assert handle.get_tensor("images").dtype == torch.float32 and handle.get_tensor("labels").dtype == torch.int64
        assert handle.get_tensor("lr").shape == ()
    assert meta["format"] == FORMAT == "distillset.synset/1"
    assert json.loads(meta["mean"]) == [0.3] and meta["num_classes"] == "3" and meta["ipc"] == "2"
    assert json.loads(meta["config"]) == {"a": 1} and meta["method"] == "test" and meta["version"]


@pytest.mark.parametrize("overrides, message", [
    ({"images": torch.full((6, 1, 8, 8), float("nan"))}, "NaN or infinite"),
    ({"labels": torch.tensor([0, 0, 1, 1, 2, 3])}, "outside 0..2"),
    ({"labels": torch.tensor([0, 0, 1, 1, 2])}, "'labels' must be int64"),
    ({"labels": torch.tensor([0, 0, 1, 1, 2, 2], dtype=torch.int32)}, "'labels' must be int64"),
    ({"images": torch.randn(6, 8, 8)}, "'images' must be float32"),
    ({"images": torch.randn(6, 1, 8, 8, dtype=torch.float64)}, "'images' must be float32"),
    ({"soft_labels": torch.randn(6, 4)}, "'soft_labels' must be"),
    ({"lr": torch.tensor(-1.0)}, "positive finite"),
    ({"zca_mean": torch.zeros(64)}, "only one of"),
    ({"zca_mean": torch.zeros(3), "zca_matrix": torch.eye(3)}, "ZCA tensors must be"),
    ({"mean": (0.1, 0.2, 0.3), "std": (1.0, 1.0, 1.0)}, "mean/std"),
])
def test_invalid_synsets_are_rejected(tmp_path, overrides, message):
    with pytest.raises(DistillsetError, match=message):
        make_synset(**overrides).save(tmp_path / "s.safetensors")
    assert not (tmp_path / "s.safetensors").exists()


def test_invalid_files_are_rejected_on_load(tmp_path):
    good = make_synset()
    tensors, meta = good.tensors(), good.metadata()
    nan = dict(tensors, images=torch.full_like(tensors["images"], float("inf")))
    save_file(nan, tmp_path / "nan.safetensors", metadata=meta)
    with pytest.raises(DistillsetError, match="nan.safetensors: 'images' contain 384 NaN"):
        SynSet.load(tmp_path / "nan.safetensors")
    save_file(dict(tensors, labels=torch.tensor([0, 0, 1, 1, 2, 9])), tmp_path / "lab.safetensors", metadata=meta)
    with pytest.raises(DistillsetError, match="labels span 0..9"):
        SynSet.load(tmp_path / "lab.safetensors")
    save_file(tensors, tmp_path / "nometa.safetensors")
    with pytest.raises(DistillsetError, match="not a distillset SynSet"):
        SynSet.load(tmp_path / "nometa.safetensors")
    save_file(tensors, tmp_path / "partial.safetensors", metadata={"format": FORMAT})
    with pytest.raises(DistillsetError, match="metadata lacks dataset"):
        SynSet.load(tmp_path / "partial.safetensors")
    save_file({"features": torch.zeros(2, 3), "adjacency": torch.zeros(2, 2), "labels": torch.zeros(2, dtype=torch.long)},
              tmp_path / "graph.safetensors", metadata={"format": "distillset.graph/1"})
    with pytest.raises(DistillsetError, match="graph SynSet"):
        SynSet.load(tmp_path / "graph.safetensors")
    save_file(dict(tensors, extra=torch.zeros(1)), tmp_path / "extra.safetensors", metadata=meta)
    with pytest.raises(DistillsetError, match="unexpected tensor"):
        SynSet.load(tmp_path / "extra.safetensors")
    save_file({"labels": tensors["labels"]}, tmp_path / "noimg.safetensors", metadata=meta)
    with pytest.raises(DistillsetError, match="tensor 'images' is missing"):
        SynSet.load(tmp_path / "noimg.safetensors")
    bad_meta = dict(meta, mean="[0.3")
    save_file(tensors, tmp_path / "badmeta.safetensors", metadata=bad_meta)
    with pytest.raises(DistillsetError, match="malformed metadata"):
        SynSet.load(tmp_path / "badmeta.safetensors")


def test_not_a_file_and_truncated(tmp_path):
    with pytest.raises(DistillsetError, match="no such file"):
        SynSet.load(tmp_path / "absent.safetensors")
    (tmp_path / "text.safetensors").write_text("hello, I am not a tensor file")
    with pytest.raises(DistillsetError, match="not a readable safetensors file"):
        SynSet.load(tmp_path / "text.safetensors")
    path = make_synset().save(tmp_path / "s.safetensors")
    (tmp_path / "cut.safetensors").write_bytes(path.read_bytes()[:-50])
    with pytest.raises(DistillsetError, match="not a readable safetensors file"):
        SynSet.load(tmp_path / "cut.safetensors")
