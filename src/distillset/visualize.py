"""Turning model-input tensors back into pictures: a PNG grid (one row per class) and an image folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .fileio import atomic_write
from .synset import SynSet


def to_pixels(images: torch.Tensor, mean, std, zca_mean=None, zca_matrix=None) -> np.ndarray:
    """Invert the input pipeline (ZCA, then normalisation) to uint8 pixels [N, H, W, C]."""
    x = images.detach().to("cpu", torch.float64)
    if zca_matrix is not None:
        flat = x.reshape(x.shape[0], -1)
        # whitened = (flat - m) @ W.T, so flat = whitened @ pinv(W.T) + m
        flat = flat @ torch.linalg.pinv(zca_matrix.to("cpu", torch.float64).T) + zca_mean.to("cpu", torch.float64)
        x = flat.reshape(x.shape)
    mean_t = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
    x = (x * std_t + mean_t).clamp(0, 1)
    return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def synset_pixels(synset: SynSet) -> np.ndarray:
    return to_pixels(synset.images, synset.mean, synset.std, synset.zca_mean, synset.zca_matrix)


def grid_image(pixels: np.ndarray, labels: np.ndarray, num_classes: int, max_per_class: int = 20,
               min_cell: int = 32, pad: int = 2) -> np.ndarray:
    """One row per class, up to ``max_per_class`` images each; small images are upscaled (nearest)."""
    h, w, c = pixels.shape[1:]
    scale = max(1, int(np.ceil(min_cell / max(h, w))))
    rows = [np.flatnonzero(labels == k)[:max_per_class] for k in range(num_classes)]
    cols = max(1, max(len(r) for r in rows))
    cell_h, cell_w = h * scale, w * scale
    canvas = np.full((num_classes * (cell_h + pad) + pad, cols * (cell_w + pad) + pad, c), 255, dtype=np.uint8)
    for k, idx in enumerate(rows):
        for j, i in enumerate(idx):
            tile = pixels[i].repeat(scale, axis=0).repeat(scale, axis=1)
            top, left = pad + k * (cell_h + pad), pad + j * (cell_w + pad)
            canvas[top:top + cell_h, left:left + cell_w] = tile
    return canvas


def save_png(array: np.ndarray, path: str | os.PathLike) -> Path:
    from PIL import Image

    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def save_grid(synset: SynSet, path: str | os.PathLike, max_per_class: int = 20) -> Path:
    """The SynSet as a PNG grid, denormalised, one row per class."""
    grid = grid_image(synset_pixels(synset), synset.labels.cpu().numpy(), synset.num_classes, max_per_class)
    return save_png(grid, path)


def export_image_folder(synset: SynSet, directory: str | os.PathLike) -> Path:
    """Write ``DIR/<class>/<index>.png``, an image folder that ``imagefolder:DIR`` reads back."""
    directory = Path(directory)
    pixels = synset_pixels(synset)
    names = synset.class_names or [str(k) for k in range(synset.num_classes)]
    for i, label in enumerate(synset.labels.tolist()):
        folder = directory / f"{label:03d}_{_safe(names[label])}"
        folder.mkdir(parents=True, exist_ok=True)
        save_png(pixels[i], folder / f"{i:05d}.png")
    return directory


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
