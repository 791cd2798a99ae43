"""The DC paper's evaluation augmentation (the official code's ``augment`` with ``get_daparam``), vectorised.

The DC code trains evaluation networks on MNIST sets with the strategy ``crop_scale_rotate`` and, for a
BatchNorm ConvNet on any dataset, with ``crop_noise``; with augmentation it trains 1000 epochs instead of
300. Each image of a batch gets ONE of the strategy's operations, chosen uniformly:

* crop: pad by 4 px with the batch's per-channel mean, cut an H x W window at offsets r, c drawn from
  {0, ..., 7} (a shift of -4..+3 px);
* scale: resize to (int(s_h H), int(s_w H)) with s ~ U(0.8, 1.2) per axis (nearest neighbour, as
  ``F.interpolate``'s default), centre on a zero canvas of side max(h, w, H, W), cut the centre H x W;
* rotate: an integer angle in [-45, 45) degrees about the centre, the corners filled with the mean of the
  channel means;
* noise: add 0.001 x N(0, 1) per pixel.

Differences from the reference, stated because they change numbers slightly: rotation interpolates
bicubically (``grid_sample``) where the reference calls scipy's cubic-spline ``rotate`` on the CPU image by
image; all draws come from the caller's generator rather than NumPy's global one, so a run can be
repeated. Crop, scale and noise are the reference's operations exactly. No loop runs over images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..device import to_device
from ..errors import DistillsetError
from .grouped import apply_by_group

OPERATIONS = ("crop", "scale", "rotate", "noise")
MNIST_STRATEGY = "crop_scale_rotate"  # get_daparam: dataset == 'MNIST'
BATCHNORM_STRATEGY = "crop_noise"  # get_daparam: model_eval == 'ConvNetBN' (overrides the dataset's)


def dc_strategy(dataset: str, model: str) -> str | None:
    """The DC code's evaluation augmentation for sets of ``dataset`` trained on ``model``, or None (none).

    As ``get_daparam``: a BatchNorm ConvNet always gets ``crop_noise``; MNIST gets ``crop_scale_rotate``."""
    from ..models.registry import canonical_name

    base = dataset.split("[")[0]
    name = canonical_name(model).replace("convnetbn", "convnet-bn")
    if name.startswith("convnet") and "bn" in name.split("-")[1:]:
        return BATCHNORM_STRATEGY
    if base == "mnist":
        return MNIST_STRATEGY
    return None


class DCAugment:
    """``augment(x, generator)``: the DC evaluation augmentation of a batch (see the module docstring)."""

    def __init__(self, strategy: str = MNIST_STRATEGY, crop: int = 4, scale: float = 0.2, rotate: int = 45,
                 noise: float = 0.001) -> None:
        ops = [s for s in strategy.split("_") if s]
        unknown = [s for s in ops if s not in OPERATIONS]
        if not ops or unknown:
            raise DistillsetError(f"unknown DC augmentation {', '.join(unknown) or '(empty)'}; a strategy joins some of "
                                  f"{', '.join(OPERATIONS)} with '_'")
        self.strategy, self.ops = strategy, ops
        self.crop, self.scale, self.rotate, self.noise = crop, scale, rotate, noise

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One operation per image, drawn on the host; the draws reach the device in one copy (plus one for the
        noise rows when ``noise`` is in the strategy), and nothing is read back, so the host never waits."""
        n = x.shape[0]
        g = generator
        choice = torch.randint(len(self.ops), (n,), generator=g)
        offsets = torch.randint(2 * self.crop, (n, 2), generator=g)
        factors = torch.rand(n, 2, generator=g) * (2 * self.scale) + (1 - self.scale)
        angles = torch.randint(-self.rotate, self.rotate, (n,), generator=g)
        noise = torch.randn(x.shape, generator=g)
        channel_mean = x.mean(dim=(0, 2, 3))  # of the batch before augmentation, as the reference
        operations = {
            "crop": lambda part, rows, _: self._crop(part, rows[:, 1:3].long(), channel_mean),
            "scale": lambda part, rows, _: self._scale(part, rows[:, 3:5].float()),
            "rotate": lambda part, rows, _: self._rotate(part, rows[:, 5], channel_mean.mean()),
            "noise": lambda part, rows, at: part + self.noise * to_device(noise[at], x.device).to(x.dtype),
        }
        return apply_by_group(x, choice, lambda order: torch.cat([offsets[order], factors[order], angles[order][:, None]], 1),
                              [operations[op] for op in self.ops])

    def _crop(self, x: torch.Tensor, offsets: torch.Tensor, channel_mean: torch.Tensor) -> torch.Tensor:
        """out[y, x] = padded[y + r, x + c], the padding holding each channel's batch mean."""
        n, c, h, w = x.shape
        shift = offsets - self.crop  # source = output + shift
        ys = torch.arange(h, device=x.device).view(1, h) + shift[:, :1]
        xs = torch.arange(w, device=x.device).view(1, w) + shift[:, 1:]
        valid = ((ys >= 0) & (ys < h)).view(n, 1, h, 1) & ((xs >= 0) & (xs < w)).view(n, 1, 1, w)
        gathered = x.gather(2, ys.clamp(0, h - 1).view(n, 1, h, 1).expand(n, c, h, w))
        gathered = gathered.gather(3, xs.clamp(0, w - 1).view(n, 1, 1, w).expand(n, c, h, w))
        return torch.where(valid, gathered, channel_mean.to(x.dtype).view(1, c, 1, 1))

    def _scale(self, x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
        """Nearest-neighbour resize to (h', w') placed at the centre of a zero canvas, then the centre H x W.

        The reference's sizes are int(s * H) for both axes (it reads shape[2] twice); kept."""
        n, c, h, w = x.shape
        new_h = (factors[:, 0] * h).long()  # int() truncates, as the reference
        new_w = (factors[:, 1] * h).long()
        side = torch.maximum(new_h, new_w).clamp_min(max(h, w))
        # output row y reads canvas row y + (side - h) // 2, which holds scaled row a = that - (side - new_h) // 2
        rows, cols = torch.arange(h, device=x.device).view(1, h), torch.arange(w, device=x.device).view(1, w)
        a = rows + ((side - h) // 2).view(n, 1) - ((side - new_h) // 2).view(n, 1)
        b = cols + ((side - w) // 2).view(n, 1) - ((side - new_w) // 2).view(n, 1)
        valid = ((a >= 0) & (a < new_h.view(n, 1))).view(n, 1, h, 1) & ((b >= 0) & (b < new_w.view(n, 1))).view(n, 1, 1, w)
        # F.interpolate(mode="nearest"): source index floor(dst * (in / out)), in float32, clamped
        src_y = (a.float() * (h / new_h.float()).view(n, 1)).floor().long().clamp(0, h - 1)
        src_x = (b.float() * (w / new_w.float()).view(n, 1)).floor().long().clamp(0, w - 1)
        gathered = x.gather(2, src_y.view(n, 1, h, 1).expand(n, c, h, w))
        gathered = gathered.gather(3, src_x.view(n, 1, 1, w).expand(n, c, h, w))
        return gathered * valid.to(x.dtype)

    def _rotate(self, x: torch.Tensor, degrees: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
        """Rotation about the centre by ``degrees``; what comes from outside the image is ``fill``."""
        n = x.shape[0]
        a = degrees.to(torch.float64) * (math.pi / 180)
        theta = torch.zeros(n, 2, 3, dtype=torch.float64, device=x.device)
        theta[:, 0, 0], theta[:, 0, 1] = torch.cos(a), -torch.sin(a)
        theta[:, 1, 0], theta[:, 1, 1] = torch.sin(a), torch.cos(a)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        shifted = x - fill  # zero padding of (x - fill) is padding x with fill
        return F.grid_sample(shifted, grid, mode="bicubic", padding_mode="zeros", align_corners=False) + fill
