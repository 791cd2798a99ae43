"""RealData: normalisation, the per-class index and class-balanced sampling."""

from __future__ import annotations

import pytest
import torch

from distillset.data import normalize_pixels, real_data
from distillset.errors import DistillsetError


def test_normalisation_pipeline():
    pixels = torch.tensor([[[[0, 255]]], [[[51, 102]]]], dtype=torch.uint8)
    x = normalize_pixels(pixels, (0.5,), (0.25,))
    expected = (pixels.float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(x, expected)


def test_class_index_and_sampling(digits):
    real = real_data(digits, "train")
    assert real.images.dtype == torch.float32 and real.images.shape == (len(digits.train_labels), 1, 8, 8)
    for c in range(10):
        assert (real.labels[real.class_indices[c]] == c).all()
    generator = torch.Generator().manual_seed(0)
    idx, labels = real.sample_balanced(5, generator)
    assert idx.unique().numel() == 50
    assert labels.tolist() == sorted(labels.tolist()) and torch.bincount(labels).tolist() == [5] * 10
    again, _ = real.sample_balanced(5, torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)


def test_ipc_larger_than_smallest_class(digits):
    real = real_data(digits, "train")
    smallest = min(real.class_count(c) for c in range(10))
    real.check_ipc(smallest)
    with pytest.raises(DistillsetError, match=f"only {smallest} training images; use --ipc {smallest} or less"):
        real.check_ipc(smallest + 1)
    with pytest.raises(DistillsetError, match="at least 1"):
        real.check_ipc(0)


def test_subset_keeps_labels_classes_and_name(digits):
    real = real_data(digits, "train")
    idx = torch.arange(0, real.labels.numel(), 3)
    part = real.subset(idx)
    assert part.name == real.name and part.num_classes == real.num_classes
    assert torch.equal(part.images, real.images[idx]) and torch.equal(part.labels, real.labels[idx])
    for c in range(10):
        assert (part.labels[part.class_indices[c]] == c).all()
    assert sum(part.class_count(c) for c in range(10)) == idx.numel()
