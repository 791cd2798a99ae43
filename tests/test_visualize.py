"""Grids and image-folder export invert the input pipeline exactly."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from distillset.data import load_dataset, normalize_pixels
from distillset.synset import SynSet
from distillset.visualize import export_image_folder, save_grid, to_pixels


def test_to_pixels_inverts_normalisation_and_zca():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(5, 3, 4, 4), dtype=np.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    x = normalize_pixels(pixels, mean, std).double()
    np.testing.assert_array_equal(to_pixels(x, mean, std), pixels.transpose(0, 2, 3, 1))
    flat = x.reshape(5, -1)
    zca_mean = flat.mean(0)
    q, _ = torch.linalg.qr(torch.randn(48, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    matrix = q @ torch.diag(torch.linspace(0.5, 2.0, 48, dtype=torch.float64)) @ q.T
    white = ((flat - zca_mean) @ matrix.T).reshape(x.shape)
    np.testing.assert_array_equal(to_pixels(white, mean, std, zca_mean, matrix), pixels.transpose(0, 2, 3, 1))


def test_grid_and_folder_export(tmp_path, digits):
    x = normalize_pixels(digits.train_images[:60], digits.mean, digits.std)
    labels = torch.tensor(digits.train_labels[:60])
    synset = SynSet(x, labels, "digits", 10, digits.mean, digits.std, "test", 1, class_names=digits.class_names)
    save_grid(synset, tmp_path / "grid.png")
    grid = Image.open(tmp_path / "grid.png")
    per_class = max(np.bincount(digits.train_labels[:60], minlength=10))
    assert grid.height == 10 * (32 + 2) + 2 and grid.width == per_class * (32 + 2) + 2
    export_image_folder(synset, tmp_path / "folder")
    back = load_dataset(f"imagefolder:{tmp_path / 'folder'}")
    assert back.shape == (1, 8, 8)
    images = np.concatenate([back.train_images, back.test_images])
    assert sorted(map(bytes, images)) == sorted(map(bytes, digits.train_images[:60]))
