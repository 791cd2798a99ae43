"""The dataset registry on real data (MNIST, FashionMNIST, digits) and on files written here."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import write_idx
from test_formats import write_cifar_batch, write_png

from distillset.data import DATASETS, load_dataset
from distillset.data import registry as reg
from distillset.data.download import fetch
from distillset.errors import DistillsetError


def test_mnist_real(mnist):
    assert mnist.train_images.shape == (60000, 1, 28, 28) and mnist.test_images.shape == (10000, 1, 28, 28)
    assert mnist.train_images.dtype == np.uint8
    assert np.bincount(mnist.test_labels).tolist()[:3] == [980, 1135, 1032]
    assert mnist.mean == (0.1307,) and mnist.num_classes == 10
    measured = mnist.train_images.astype(np.float64).mean() / 255
    assert abs(measured - 0.1307) < 1e-3  # the registry's normalisation is the data's


def test_fashion_mnist_real_recompressed(data_root):
    # Debian re-compresses FashionMNIST: the .gz md5 differs but the content checksum must pass.
    data = load_dataset("fashion-mnist", data_root=data_root)
    assert data.train_images.shape == (60000, 1, 28, 28)
    assert data.class_names[9] == "Ankle boot"


def test_digits_embedded_split():
    data = load_dataset("digits")
    assert data.shape == (1, 8, 8) and data.num_classes == 10
    assert len(data.train_labels) + len(data.test_labels) == 1797
    assert np.bincount(data.test_labels).tolist() == [c // 5 for c in np.bincount(np.concatenate([data.train_labels, data.test_labels]))]
    assert data.train_images.max() == 255


def copy_mnist(data_root: Path, dest: Path) -> Path:
    raw = dest / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in DATASETS["mnist"].files:
        shutil.copy(data_root / "MNIST" / "raw" / f.name, raw / f.name)
    return raw


def test_checksum_mismatch_and_no_verify(data_root, tmp_path):
    raw = copy_mnist(data_root, tmp_path)
    labels = raw / "t10k-labels-idx1-ubyte.gz"
    import gzip

    content = bytearray(gzip.decompress(labels.read_bytes()))
    content[100] = (content[100] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DistillsetError, match="checksum mismatch for .*t10k-labels"):
        load_dataset("mnist", data_root=tmp_path)
    assert load_dataset("mnist", data_root=tmp_path, verify=False).test_labels.shape == (10000,)


def test_uncompressed_twin_is_accepted(data_root, tmp_path):
    import gzip

    raw = copy_mnist(data_root, tmp_path)
    gz = raw / "t10k-labels-idx1-ubyte.gz"
    (raw / "t10k-labels-idx1-ubyte").write_bytes(gzip.decompress(gz.read_bytes()))
    gz.unlink()
    assert load_dataset("mnist", data_root=tmp_path).test_labels.shape == (10000,)


def test_truncated_release_file(data_root, tmp_path):
    raw = copy_mnist(data_root, tmp_path)
    path = raw / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    for verify in (True, False):
        with pytest.raises(DistillsetError, match="truncated or corrupt gzip"):
            load_dataset("mnist", data_root=tmp_path, verify=verify)


def test_missing_root_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv("DISTILLSET_DATA", raising=False)
    with pytest.raises(DistillsetError) as info:
        load_dataset("mnist", data_root=tmp_path / "empty")
    message = str(info.value)
    assert str(tmp_path / "empty" / "MNIST" / "raw") in message and "--data-root" in message and "--download" in message


def test_env_var_root(data_root, monkeypatch):
    monkeypatch.setenv("DISTILLSET_DATA", str(data_root))
    assert load_dataset("mnist").test_images.shape[0] == 10000


def test_unknown_dataset_lists_names():
    with pytest.raises(DistillsetError, match="unknown dataset 'mnsit'.*cifar10.*mnist"):
        load_dataset("mnsit")


def make_fake_kmnist(root: Path, n: int = 20) -> None:
    raw = root / "KMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8) % 10)


def test_kmnist_reader_on_written_files(tmp_path):
    make_fake_kmnist(tmp_path)
    with pytest.raises(DistillsetError, match="checksum mismatch"):
        load_dataset("kmnist", data_root=tmp_path)
    data = load_dataset("kmnist", data_root=tmp_path, verify=False)
    assert data.train_images.shape == (20, 1, 28, 28) and data.class_names[0] == "o"


def test_cifar10_and_cifar100_through_registry(tmp_path):
    c10 = tmp_path / "cifar-10-batches-py"
    c10.mkdir()
    for i in range(1, 6):
        write_cifar_batch(c10 / f"data_batch_{i}", 4)
    write_cifar_batch(c10 / "test_batch", 3)
    data = load_dataset("cifar10", data_root=tmp_path, verify=False)
    assert data.train_images.shape == (20, 3, 32, 32) and data.test_images.shape == (3, 3, 32, 32)
    assert data.class_names[0] == "airplane"
    c100 = tmp_path / "cifar-100-python"
    c100.mkdir()
    write_cifar_batch(c100 / "train", 8, "fine_labels", 100)
    write_cifar_batch(c100 / "test", 2, "fine_labels", 100)
    import pickle

    with open(c100 / "meta", "wb") as handle:
        pickle.dump({b"fine_label_names": [f"n{i}".encode() for i in range(100)]}, handle, protocol=2)
    data = load_dataset("cifar100", data_root=tmp_path, verify=False)
    assert data.num_classes == 100 and data.class_names[5] == "n5"


def test_svhn_through_registry(tmp_path):
    from scipy.io import savemat

    (tmp_path / "SVHN").mkdir()
    rng = np.random.default_rng(2)
    for split, n in (("train", 6), ("test", 3)):
        savemat(tmp_path / "SVHN" / f"{split}_32x32.mat", {"X": rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8),
                                                          "y": (np.arange(n) % 10 + 1).reshape(-1, 1)})
    data = load_dataset("svhn", data_root=tmp_path, verify=False)
    assert data.train_images.shape == (6, 3, 32, 32) and set(data.train_labels.tolist()) <= set(range(10))


def test_imagefolder_dataset(tmp_path):
    rng = np.random.default_rng(3)
    for c in ("a", "b"):
        for i in range(10):
            write_png(tmp_path / "imgs" / c / f"{i}.png", rng.integers(0, 256, size=(12, 10), dtype=np.uint8))
    data = load_dataset(f"imagefolder:{tmp_path / 'imgs'}")
    assert data.shape == (1, 12, 10) and data.class_names == ["a", "b"]
    assert len(data.train_labels) == 16 and len(data.test_labels) == 4
    resized = load_dataset(f"imagefolder:{tmp_path / 'imgs'}", image_size=(8, 8))
    assert resized.shape == (1, 8, 8)


def test_imagefolder_train_test_layout(tmp_path):
    rng = np.random.default_rng(4)
    for split, n in (("train", 4), ("test", 2)):
        for c in ("x", "y"):
            for i in range(n):
                write_png(tmp_path / split / c / f"{i}.png", rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8))
    data = load_dataset(f"imagefolder:{tmp_path}")
    assert data.shape == (3, 6, 6) and len(data.train_labels) == 8 and len(data.test_labels) == 4


def test_npz_dataset(tmp_path):
    rng = np.random.default_rng(5)
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 256, size=(30, 9, 9, 3), dtype=np.uint8), y=np.arange(30) % 3)
    data = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert data.shape == (3, 9, 9) and data.num_classes == 3 and len(data.test_labels) == 6
    np.savez(tmp_path / "t.npz", x=rng.random((10, 5, 5)), y=np.arange(10) % 2, x_test=rng.random((4, 5, 5)), y_test=np.arange(4) % 2)
    data = load_dataset(f"npz:{tmp_path / 't.npz'}")
    assert len(data.test_labels) == 4 and data.train_images.dtype == np.uint8
    np.savez(tmp_path / "bad.npz", x=rng.random((10, 5, 5)))
    with pytest.raises(DistillsetError, match="lacks array"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")
    np.savez(tmp_path / "neg.npz", x=rng.random((10, 5, 5)), y=np.arange(10) - 1)
    with pytest.raises(DistillsetError, match="labels must be"):
        load_dataset(f"npz:{tmp_path / 'neg.npz'}")
    with pytest.raises(DistillsetError, match="no such file"):
        load_dataset(f"npz:{tmp_path / 'absent.npz'}")


@pytest.fixture()
def http_server(tmp_path):
    """A loopback HTTP server over a folder (the only network a test may use)."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_verifies_checksums(http_server, tmp_path):
    served, base = http_server
    (served / "file.bin").write_bytes(b"payload")
    good = hashlib.md5(b"payload").hexdigest()
    dest = fetch(base + "file.bin", tmp_path / "dl" / "file.bin", good)
    assert dest.read_bytes() == b"payload"
    with pytest.raises(DistillsetError, match="failed verification"):
        fetch(base + "file.bin", tmp_path / "dl2" / "file.bin", "0" * 32)
    assert not (tmp_path / "dl2" / "file.bin").exists()
    with pytest.raises(DistillsetError, match="download of .* failed"):
        fetch(base + "missing.bin", tmp_path / "dl3" / "missing.bin", good)


def test_download_option_fetches_a_whole_dataset(http_server, tmp_path, monkeypatch):
    served, base = http_server
    make_fake_kmnist(served / "src")
    files = []
    for f in DATASETS["kmnist"].files:
        payload = (served / "src" / "KMNIST" / "raw" / f.name).read_bytes()
        (served / f.name).write_bytes(payload)
        files.append(reg.DataFile(f.name, hashlib.md5(payload).hexdigest()))
    spec = reg.DatasetSpec(**{**DATASETS["kmnist"].__dict__, "url_base": base, "files": tuple(files)})
    monkeypatch.setitem(DATASETS, "kmnist", spec)
    with pytest.raises(DistillsetError, match="not found"):
        load_dataset("kmnist", data_root=tmp_path / "root")
    data = load_dataset("kmnist", data_root=tmp_path / "root", download=True)
    assert data.train_images.shape == (20, 1, 28, 28)
    assert (tmp_path / "root" / "KMNIST" / "raw" / "train-images-idx3-ubyte.gz").exists()
