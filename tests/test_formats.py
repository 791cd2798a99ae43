"""Readers of every standard format, on small files written here in the same format."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
from conftest import idx_bytes, write_idx

from distillset.data import formats
from distillset.errors import DistillsetError

RNG = np.random.default_rng(0)


def test_idx_roundtrip_gz_and_raw(tmp_path):
    images = RNG.integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 5, 6], dtype=np.uint8)
    ip = write_idx(tmp_path / "img.gz", images)
    lp = write_idx(tmp_path / "lab", labels, compress=False)
    x, y = formats.read_idx_pair(ip, lp)
    assert x.shape == (7, 1, 5, 4) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:, 0], images)
    np.testing.assert_array_equal(y, labels.astype(np.int64))


def test_idx_truncated_bad_magic_and_corrupt_gzip(tmp_path):
    data = idx_bytes(RNG.integers(0, 256, size=(4, 3, 3), dtype=np.uint8))
    with pytest.raises(DistillsetError, match="truncated"):
        formats.parse_idx(data[:-5], "x")
    with pytest.raises(DistillsetError, match="bad magic"):
        formats.parse_idx(b"\x01\x02" + data[2:], "x")
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(data)[:20])
    with pytest.raises(DistillsetError, match="truncated or corrupt gzip"):
        formats.read_bytes(bad)


def test_idx_pair_mismatch(tmp_path):
    ip = write_idx(tmp_path / "i.gz", RNG.integers(0, 256, size=(4, 3, 3), dtype=np.uint8))
    lp = write_idx(tmp_path / "l.gz", np.zeros(5, dtype=np.uint8))
    with pytest.raises(DistillsetError, match="does not match"):
        formats.read_idx_pair(ip, lp)


def write_cifar_batch(path, n: int, label_key: str = "labels", num_classes: int = 10, protocol: int = 2):
    data = RNG.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in RNG.integers(0, num_classes, size=n)]
    with open(path, "wb") as handle:
        pickle.dump({b"batch_label": b"test", b"data": data, label_key.encode(): labels, b"filenames": [b"a"] * n}, handle, protocol=protocol)
    return data, labels


def test_cifar_batches_and_label_names(tmp_path):
    d1, l1 = write_cifar_batch(tmp_path / "b1", 6)
    d2, l2 = write_cifar_batch(tmp_path / "b2", 4, protocol=4)
    x, y = formats.read_cifar_batches([tmp_path / "b1", tmp_path / "b2"], "labels")
    assert x.shape == (10, 3, 32, 32)
    np.testing.assert_array_equal(x[:6].reshape(6, -1), d1)  # channel planes, row-major
    assert y.tolist() == l1 + l2
    with open(tmp_path / "meta", "wb") as handle:
        pickle.dump({b"label_names": [b"cat", b"dog"]}, handle, protocol=2)
    assert formats.read_cifar_label_names(tmp_path / "meta", "label_names") == ["cat", "dog"]
    assert formats.read_cifar_label_names(tmp_path / "absent", "label_names") is None


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_cifar_pickle_never_executes_code(tmp_path, capsys):
    path = tmp_path / "evil"
    with open(path, "wb") as handle:
        pickle.dump({b"data": _Evil()}, handle)
    with pytest.raises(DistillsetError, match="unsafe"):
        formats.read_cifar_pickle(path)
    assert "must never run" not in capsys.readouterr().out


def test_cifar_truncated(tmp_path):
    write_cifar_batch(tmp_path / "b", 5)
    raw = (tmp_path / "b").read_bytes()
    (tmp_path / "t").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DistillsetError, match="not a readable CIFAR batch"):
        formats.read_cifar_batches([tmp_path / "t"], "labels")


def test_svhn_mat(tmp_path):
    from scipy.io import savemat

    x = RNG.integers(0, 256, size=(32, 32, 3, 5), dtype=np.uint8)
    y = np.array([[10], [1], [2], [3], [10]], dtype=np.uint8)
    savemat(tmp_path / "s.mat", {"X": x, "y": y})
    images, labels = formats.read_svhn_mat(tmp_path / "s.mat")
    assert images.shape == (5, 3, 32, 32)
    np.testing.assert_array_equal(images[2], x[:, :, :, 2].transpose(2, 0, 1))
    assert labels.tolist() == [0, 1, 2, 3, 0]
    (tmp_path / "bad.mat").write_bytes((tmp_path / "s.mat").read_bytes()[:300])
    with pytest.raises(DistillsetError, match="SVHN"):
        formats.read_svhn_mat(tmp_path / "bad.mat")


def write_png(path, array):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_image_folder_read_resize_and_errors(tmp_path):
    for name in ["cat", "dog"]:
        for i in range(3):
            write_png(tmp_path / name / f"{i}.png", RNG.integers(0, 256, size=(6, 5, 3), dtype=np.uint8))
    classes, items = formats.list_image_folder(tmp_path)
    assert classes == ["cat", "dog"] and len(items) == 6
    assert not formats.folder_is_grayscale(items)
    x, y = formats.read_images(items, None, grayscale=False)
    assert x.shape == (6, 3, 6, 5) and y.tolist() == [0, 0, 0, 1, 1, 1]
    write_png(tmp_path / "dog" / "big.png", RNG.integers(0, 256, size=(9, 9, 3), dtype=np.uint8))
    _, items = formats.list_image_folder(tmp_path)
    with pytest.raises(DistillsetError, match="differ in size"):
        formats.read_images(items, None, grayscale=False)
    x, _ = formats.read_images(items, (4, 4), grayscale=False)
    assert x.shape == (7, 3, 4, 4)
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    _, items = formats.list_image_folder(tmp_path)
    with pytest.raises(DistillsetError, match="cannot decode"):
        formats.read_images(items, (4, 4), grayscale=False)


def test_image_folder_without_classes(tmp_path):
    with pytest.raises(DistillsetError, match="no class sub-folders"):
        formats.list_image_folder(tmp_path)
    with pytest.raises(DistillsetError, match="does not exist"):
        formats.list_image_folder(tmp_path / "nope")


def test_images_to_uint8_layouts_and_ranges():
    hw = RNG.integers(0, 256, size=(2, 4, 5), dtype=np.uint8)
    assert formats.images_to_uint8_nchw(hw, "x").shape == (2, 1, 4, 5)
    assert formats.images_to_uint8_nchw(RNG.integers(0, 256, size=(2, 4, 5, 3), dtype=np.uint8), "x").shape == (2, 3, 4, 5)
    floats = formats.images_to_uint8_nchw(np.full((1, 2, 2), 0.5), "x")
    assert floats.max() == 128
    ints = formats.images_to_uint8_nchw(np.ones((1, 2, 2), dtype=np.int64), "x")
    assert ints.max() == 1  # integers are pixel values, never rescaled
    with pytest.raises(DistillsetError, match="NaN"):
        formats.images_to_uint8_nchw(np.full((1, 2, 2), np.nan), "x")
    with pytest.raises(DistillsetError, match="pixel values span"):
        formats.images_to_uint8_nchw(np.full((1, 2, 2), 300.0), "x")
    with pytest.raises(DistillsetError, match="must be"):
        formats.images_to_uint8_nchw(np.zeros((2, 2)), "x")


def test_an_image_folder_whose_test_split_was_deleted_is_refused(tmp_path):
    from distillset.data import load_dataset

    for split in ("train", "test"):
        for name in ("cat", "dog"):
            for i in range(5):
                write_png(tmp_path / split / name / f"{i}.png", RNG.integers(0, 256, size=(4, 4, 3), dtype=np.uint8))
    assert len(load_dataset(f"imagefolder:{tmp_path}").test_labels) == 10
    import shutil

    shutil.rmtree(tmp_path / "test")
    with pytest.raises(DistillsetError, match="has a train folder but no test"):
        load_dataset(f"imagefolder:{tmp_path}")


def write_tiny_imagenet(root, train_per_class: int = 1):
    """A release in Tiny ImageNet's layout (200 wnids, JPEGs, some grey) with one val image per class."""
    from PIL import Image

    folder = root / "tiny-imagenet-200"
    wnids = [f"n{10000000 + 7 * i:08d}" for i in range(200)]
    (folder / "val" / "images").mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(reversed(wnids)) + "\n")  # the release does not sort them
    (folder / "words.txt").write_text("".join(f"{w}\tthing {i}, synonym\n" for i, w in enumerate(wnids)))
    annotations = []
    for i, wnid in enumerate(wnids):
        images = folder / "train" / wnid / "images"
        images.mkdir(parents=True)
        for k in range(train_per_class):
            pixels = np.full((64, 64, 3), i, dtype=np.uint8)
            mode = "L" if i % 50 == 0 else "RGB"  # the release has grey JPEGs among its RGB ones
            Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode).save(images / f"{wnid}_{k}.JPEG", quality=100)
        Image.fromarray(np.full((64, 64, 3), i, dtype=np.uint8)).save(folder / "val" / "images" / f"val_{i}.JPEG", quality=100)
        annotations.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(annotations) + "\n")
    return folder, wnids


def test_tiny_imagenet_release_layout(tmp_path):
    """Classes in sorted wnid order, val as the test split with its annotated labels, grey JPEGs as RGB, names
    from words.txt; a folder that is not the 200-class release is refused with one line."""
    from distillset.data import load_dataset

    folder, wnids = write_tiny_imagenet(tmp_path)
    data = load_dataset("tinyimagenet", data_root=tmp_path)
    assert data.train_images.shape == (200, 3, 64, 64) and data.test_images.shape == (200, 3, 64, 64)
    assert data.class_names[:2] == ["thing 0", "thing 1"] and data.num_classes == 200
    np.testing.assert_array_equal(data.train_labels, np.arange(200))
    # image i was painted with grey level i; JPEG at quality 100 keeps it within a step or two
    assert np.abs(data.train_images.reshape(200, -1).mean(1) - np.arange(200)).max() < 2
    assert np.abs(data.test_images[data.test_labels == 137].mean() - 137) < 2
    (folder / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99999999\t0\t0\t63\t63\n")
    with pytest.raises(DistillsetError, match="line 1 names no known class"):
        load_dataset("tinyimagenet", data_root=tmp_path)
    (folder / "wnids.txt").write_text("\n".join(wnids[:10]))
    with pytest.raises(DistillsetError, match="lists 10 distinct classes"):
        load_dataset("tinyimagenet", data_root=tmp_path)


def test_a_zip_member_that_would_escape_the_data_root_is_refused(tmp_path):
    import zipfile

    from distillset.data.download import extract_zip

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("tiny-imagenet-200/wnids.txt", "n0\n")
        bundle.writestr("../outside.txt", "boo")
    (tmp_path / "root").mkdir()
    with pytest.raises(DistillsetError, match="outside"):
        extract_zip(archive, tmp_path / "root")
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "root" / "tiny-imagenet-200").exists()
