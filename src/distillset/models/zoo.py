"""The rest of the field's standard zoo: LeNet, AlexNet (+BN), VGG11 (+BN), ResNet18 (+BN, +_AP).

Layer plans follow the DC/DSA/DM papers' benchmark networks. Where those networks hard-code
28x28 or 32x32 inputs, the classifier width is measured from a dummy forward pass instead, so
every model builds for any (channels, size, classes) it can downsample; when an input is too small
for a model's pooling, construction fails with a message saying so.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import DistillsetError
from .convnet import make_norm2d
from .pooling import AvgPool2x2


def _feature_size(features: nn.Module, channels: int, size: tuple[int, int], model: str) -> int:
    """Flattened feature width for one input, or a clear error when the input is too small."""
    try:
        with torch.no_grad():
            out = features(torch.zeros(2, channels, *size))
    except (RuntimeError, ValueError) as exc:  # too-small maps: pooling fails, or a norm sees one value per channel
        raise DistillsetError(f"model '{model}' cannot take {channels}x{size[0]}x{size[1]} inputs: they are too small for its "
                              f"pooling ({str(exc).splitlines()[0]}); pick a model with fewer downsampling steps") from None
    if out.numel() == 0:
        raise DistillsetError(f"model '{model}' cannot take {size[0]}x{size[1]} inputs: its feature map shrinks to nothing")
    return int(out[0].numel())


class _Embedder(nn.Module):
    """features -> flatten (the embedding) -> classifier."""

    features: nn.Module
    classifier: nn.Module
    embed_dim: int

    def embed(self, x):
        return self.features(x).flatten(1)

    def forward(self, x):
        return self.classifier(self.embed(x))


class LeNet(_Embedder):
    """conv5(6)-pool-conv5(16)-pool-fc120-fc84-fc; one-channel inputs are padded by 2 (as for 28x28 MNIST)."""

    def __init__(self, channels: int, size: tuple[int, int], num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=2 if channels == 1 else 0), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        flat = _feature_size(self.features, channels, size, "lenet")
        self.fc = nn.Sequential(nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.embed_dim = 84
        self.classifier = nn.Linear(84, num_classes)

    def embed(self, x):
        return self.fc(self.features(x).flatten(1))


class AlexNet(_Embedder):
    """Five convolutions (128/192/256/192/192) with three max-pools; ``batch_norm`` adds BN after each."""

    def __init__(self, channels: int, size: tuple[int, int], num_classes: int, batch_norm: bool = False) -> None:
        super().__init__()
        plan = [(128, 5, 4 if channels == 1 else 2, True), (192, 5, 2, True), (256, 3, 1, False), (192, 3, 1, False), (192, 3, 1, True)]
        layers: list[nn.Module] = []
        in_ch = channels
        for out_ch, kernel, pad, pool in plan:
            layers.append(nn.Conv2d(in_ch, out_ch, kernel, padding=pad))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.ReLU(inplace=True))
            if pool:
                layers.append(nn.MaxPool2d(2))
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.embed_dim = _feature_size(self.features, channels, size, "alexnet")
        self.classifier = nn.Linear(self.embed_dim, num_classes)


class VGG11(_Embedder):
    """VGG11 (64, M, 128, M, 256x2, M, 512x2, M, 512x2, M) with instance norm, or batch norm."""

    PLAN = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")

    def __init__(self, channels: int, size: tuple[int, int], num_classes: int, norm: str = "instance") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch, h, w = channels, *size
        first = True
        for item in self.PLAN:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
                continue
            pad = 3 if first and channels == 1 and size == (28, 28) else 1
            h, w = h + 2 * pad - 2, w + 2 * pad - 2
            layers += [nn.Conv2d(in_ch, item, 3, padding=pad), make_norm2d(norm, item, h, w), nn.ReLU(inplace=True)]
            in_ch, first = item, False
        self.features = nn.Sequential(*layers)
        self.embed_dim = _feature_size(self.features, channels, size, "vgg11")
        self.classifier = nn.Linear(self.embed_dim, num_classes)


class _Block(nn.Module):
    """ResNet basic block; ``avg_pool_downsample`` replaces stride-2 convs by stride 1 + AvgPool (the _AP variant)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, norm: str, avg_pool_downsample: bool) -> None:
        super().__init__()
        conv_stride = 1 if avg_pool_downsample else stride
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=conv_stride, padding=1, bias=False)
        self.norm1 = _resnet_norm(norm, out_ch)
        self.pool = AvgPool2x2() if avg_pool_downsample and stride != 1 else nn.Identity()
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.norm2 = _resnet_norm(norm, out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            parts: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 1, stride=conv_stride, bias=False)]
            if avg_pool_downsample and stride != 1:
                parts.append(AvgPool2x2())
            parts.append(_resnet_norm(norm, out_ch))
            self.shortcut = nn.Sequential(*parts)

    def forward(self, x):
        out = torch.relu(self.norm1(self.pool(self.conv1(x))))
        out = self.norm2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def _resnet_norm(norm: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if norm == "batch" else nn.GroupNorm(channels, channels, affine=True)


class ResNet18(_Embedder):
    """ResNet-18 for small images: 3x3 stem, four stages of two basic blocks, global average pool."""

    def __init__(self, channels: int, size: tuple[int, int], num_classes: int, norm: str = "instance",
                 avg_pool_downsample: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, 64, 3, padding=1, bias=False), _resnet_norm(norm, 64), nn.ReLU(inplace=True)]
        in_ch = 64
        for out_ch, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [_Block(in_ch, out_ch, stride, norm, avg_pool_downsample), _Block(out_ch, out_ch, 1, norm, avg_pool_downsample)]
            in_ch = out_ch
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*layers)
        self.embed_dim = _feature_size(self.features, channels, size, "resnet18")
        self.classifier = nn.Linear(self.embed_dim, num_classes)
