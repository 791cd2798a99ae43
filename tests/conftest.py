"""Shared fixtures: the real test data in ../shared/data (or $DISTILLSET_DATA) and small writers."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path:
    return Path(os.environ.get("DISTILLSET_DATA") or REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if not (root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists():
        message = f"real test data not found at {root}; set DISTILLSET_DATA"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must never pass by skipping the real-data tests
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def mnist(data_root):
    from distillset.data import load_dataset

    return load_dataset("mnist", data_root=data_root)


@pytest.fixture(scope="session")
def digits():
    from distillset.data import load_dataset

    return load_dataset("digits")


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the idx format (magic 0 0 8 ndim, big-endian dims)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.fixture(autouse=True, scope="session")
def isolated_cache(tmp_path_factory):
    """Trained feature networks are cached; tests keep theirs out of the user's home."""
    os.environ["DISTILLSET_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
