"""Differentiable Siamese Augmentation (Zhao & Bilen, ICML 2021), vectorised and seeded explicitly.

Six families with the paper's ranges: color (brightness +-0.5, saturation x[0, 2], contrast
x[0.5, 1.5], applied in that order), crop (translate by up to 1/8 of the size, zero fill), cutout
(one square of half the size, zeroed), flip (horizontal, p 0.5), scale (x[1/1.2, 1.2] per axis) and
rotate (+-15 degrees). Each draw picks ONE family, as the reference's default mode ('S') does: per class
in the siamese use (shared by the class's real and synthetic batch), per batch otherwise, with the
family's parameters drawn per image (:meth:`DSA.draw_batch`).

Parameters are drawn as rows (:meth:`DSA.draw`) and applied through an index that maps every image
to its row (:meth:`DSA.apply`): one row per class, shared by that class's real and synthetic batch,
is the siamese use in condensation; one row per image is the per-sample use when training
evaluation networks. All draws come from the caller's torch.Generator (the reference reseeds the
global RNG from the clock, so its runs cannot be repeated). Every operation is differentiable with
respect to the images; no Python loop runs over images (only over the six families).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import DistillsetError
from .grouped import apply_by_group

FAMILIES = ("color", "crop", "cutout", "flip", "scale", "rotate")
DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"
NO_FLIP_STRATEGY = "color_crop_cutout_scale_rotate"  # digits and house numbers must not be mirrored


def strategy_for(dataset: str) -> str:
    """The paper's choice: no flip for MNIST-style digits and SVHN, all six families otherwise."""
    base = dataset.split("[")[0]  # a class subset such as "mnist[classes=0,1]" is still MNIST
    return NO_FLIP_STRATEGY if base in ("mnist", "kmnist", "svhn", "digits") else DEFAULT_STRATEGY


@dataclass
class DSAParams:
    """One row per draw; only the fields of a row's own family are used."""

    family: torch.Tensor  # long [P], index into the strategy's families
    brightness: torch.Tensor
    saturation: torch.Tensor
    contrast: torch.Tensor
    shift: torch.Tensor  # long [P, 2] (dy, dx) in pixels
    cutout_center: torch.Tensor  # long [P, 2]
    flip: torch.Tensor  # bool [P]
    scale: torch.Tensor  # [P, 2] (sx, sy)
    angle: torch.Tensor  # [P] radians


class DSA:
    def __init__(self, strategy: str = DEFAULT_STRATEGY, crop_ratio: float = 0.125, cutout_ratio: float = 0.5,
                 scale_ratio: float = 1.2, rotate_degrees: float = 15.0) -> None:
        names = [s for s in strategy.split("_") if s]
        unknown = [s for s in names if s not in FAMILIES]
        if not names or unknown:
            raise DistillsetError(f"unknown DSA famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown) or '(empty)'}; "
                                  f"a strategy joins some of {', '.join(FAMILIES)} with '_'")
        self.strategy = strategy
        self.families = names
        self.crop_ratio, self.cutout_ratio = crop_ratio, cutout_ratio
        self.scale_ratio, self.rotate = scale_ratio, math.radians(rotate_degrees)

    # ------------------------------------------------------------------------------------ draws
    def draw(self, rows: int, size: tuple[int, int], generator: torch.Generator) -> DSAParams:
        """``rows`` independent draws for images of ``size`` (H, W), all from ``generator`` (CPU)."""
        h, w = size
        g = generator
        u = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
        max_dy, max_dx = int(h * self.crop_ratio + 0.5), int(w * self.crop_ratio + 0.5)
        return DSAParams(
            family=torch.randint(len(self.families), (rows,), generator=g),
            brightness=u(rows) - 0.5,
            saturation=u(rows) * 2.0,
            contrast=u(rows) + 0.5,
            shift=torch.stack([torch.randint(-max_dy, max_dy + 1, (rows,), generator=g),
                               torch.randint(-max_dx, max_dx + 1, (rows,), generator=g)], 1),
            cutout_center=torch.stack([torch.randint(0, h, (rows,), generator=g), torch.randint(0, w, (rows,), generator=g)], 1),
            flip=u(rows) < 0.5,
            scale=u(rows, 2) * (self.scale_ratio - 1.0 / self.scale_ratio) + 1.0 / self.scale_ratio,
            angle=(u(rows) - 0.5) * 2 * self.rotate,
        )

    def draw_batch(self, rows: int, size: tuple[int, int], generator: torch.Generator) -> DSAParams:
        """The non-siamese draw of the reference (its default mode 'S'): ONE family for the whole batch, its
        parameters drawn per image. (Drawing a family per image instead mixes, e.g., rotated and cut-out images
        in one batch, which the reference never does.)"""
        params = self.draw(rows, size, generator)
        params.family = torch.randint(len(self.families), (1,), generator=generator).expand(rows).clone()
        return params

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Non-siamese augmentation of a batch (inner loops, evaluation, experts): see :meth:`draw_batch`."""
        params = self.draw_batch(x.shape[0], tuple(x.shape[2:]), generator)
        return self.apply(x, params, torch.arange(x.shape[0]))

    def siamese(self, batches: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
        """The same single transform applied to every batch given (e.g. one class's real and synthetic images)."""
        params = self.draw(1, tuple(batches[0].shape[2:]), generator)
        return [self.apply(b, params, torch.zeros(b.shape[0], dtype=torch.long)) for b in batches]

    # ------------------------------------------------------------------------------------ apply
    def apply(self, x: torch.Tensor, params: DSAParams, index: torch.Tensor) -> torch.Tensor:
        """Augment image i with parameter row ``index[i]``; differentiable with respect to ``x``.

        ``index`` should be a host (CPU) tensor: everything the device needs, the order that groups images by
        family and every image's parameters, is assembled on the host and sent in ONE copy (asynchronous on
        CUDA), so a call never makes the host wait for the stream. (A device ``index`` works but costs one
        device-to-host copy.)"""
        index = index.cpu()
        family = params.family[index]
        transforms = [lambda part, rows, _, name=name: getattr(self, f"_{name}")(part, rows) for name in self.families]
        return apply_by_group(x, family, lambda order: self._table(params, index[order], family[order]), transforms)

    def _table(self, p: DSAParams, rows: torch.Tensor, family: torch.Tensor) -> torch.Tensor:
        """Every image's parameters as float64 columns (exact for the float32 values and pixel offsets):
        brightness, saturation, contrast | shift dy, dx | cutout centre y, x | flip | affine theta (2x3)."""
        n = rows.numel()
        theta = torch.zeros(n, 2, 3)
        if "scale" in self.families:
            on = family == self.families.index("scale")
            s = p.scale[rows[on]]
            theta[on, 0, 0], theta[on, 1, 1] = s[:, 0], s[:, 1]
        if "rotate" in self.families:
            on = family == self.families.index("rotate")
            a = p.angle[rows[on]]
            theta[on, 0, 0], theta[on, 0, 1] = torch.cos(a), torch.sin(-a)
            theta[on, 1, 0], theta[on, 1, 1] = torch.sin(a), torch.cos(a)
        columns = [p.brightness[rows][:, None], p.saturation[rows][:, None], p.contrast[rows][:, None], p.shift[rows],
                   p.cutout_center[rows], p.flip[rows][:, None], theta.view(n, 6)]
        return torch.cat([c.to(torch.float64) for c in columns], 1)  # column 0 of the table is the image's position

    @staticmethod
    def _col(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return values.to(dtype=x.dtype).view(-1, 1, 1, 1)

    def _color(self, x, t):
        x = x + self._col(t[:, 1], x)
        mean_c = x.mean(dim=1, keepdim=True)
        x = (x - mean_c) * self._col(t[:, 2], x) + mean_c
        mean_all = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean_all) * self._col(t[:, 3], x) + mean_all

    def _crop(self, x, t):
        n, _, h, w = x.shape
        shift = t[:, 4:6].long()
        ys = torch.arange(h, device=x.device).view(1, h) - shift[:, :1]  # source row of each output row
        xs = torch.arange(w, device=x.device).view(1, w) - shift[:, 1:]
        valid = ((ys >= 0) & (ys < h)).view(n, 1, h, 1) & ((xs >= 0) & (xs < w)).view(n, 1, 1, w)
        ys, xs = ys.clamp(0, h - 1), xs.clamp(0, w - 1)
        gathered = x.gather(2, ys.view(n, 1, h, 1).expand(n, x.shape[1], h, w))
        gathered = gathered.gather(3, xs.view(n, 1, 1, w).expand(n, x.shape[1], h, w))
        return gathered * valid.to(x.dtype)

    def _cutout(self, x, t):
        n, _, h, w = x.shape
        center = t[:, 6:8].long()
        ch, cw = int(h * self.cutout_ratio + 0.5), int(w * self.cutout_ratio + 0.5)
        top, left = center[:, :1] - ch // 2, center[:, 1:] - cw // 2
        r = torch.arange(h, device=x.device).view(1, h)
        c = torch.arange(w, device=x.device).view(1, w)
        inside = ((r >= top) & (r < top + ch)).view(n, 1, h, 1) & ((c >= left) & (c < left + cw)).view(n, 1, 1, w)
        return x * (~inside).to(x.dtype)

    def _flip(self, x, t):
        return torch.where((t[:, 8] > 0.5).view(-1, 1, 1, 1), x.flip(3), x)

    def _affine(self, x, t):
        grid = F.affine_grid(t[:, 9:15].view(-1, 2, 3).to(x.dtype), list(x.shape), align_corners=True)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)

    _scale = _rotate = _affine
