"""The field's standard ConvNet and its depth/width/norm/activation/pooling variants.

depth x [Conv3x3(width) -> norm -> act -> pool 2x2] -> Linear. "Instance norm" is GroupNorm(C, C),
as in the DC/DSA/DM papers. For 28x28 inputs the first convolution pads by 3 so the feature maps go
32 -> 16 -> 8 -> 4, as the reference architecture does for MNIST-family data.
"""

from __future__ import annotations

from torch import nn

from ..errors import DistillsetError
from .pooling import AvgPool2x2

NORMS = ("instance", "batch", "layer", "group", "none")
ACTIVATIONS = ("relu", "sigmoid", "leakyrelu", "swish")
POOLINGS = ("avg", "max", "none")


def make_activation(name: str) -> nn.Module:
    """In place where the backward pass allows it: it saves one full-size activation per layer, which
    measured ~35% off the norm-activation-pool block of a ConvNet on a 2-core CPU (BENCHMARKS.md).
    SiLU's backward needs its input, so it stays out of place."""
    return {"relu": lambda: nn.ReLU(inplace=True), "sigmoid": nn.Sigmoid,
            "leakyrelu": lambda: nn.LeakyReLU(0.01, inplace=True), "swish": nn.SiLU}[name]()


def make_norm2d(name: str, channels: int, height: int, width: int) -> nn.Module:
    if name == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "layer":
        return nn.LayerNorm([channels, height, width], elementwise_affine=True)
    if name == "group":
        return nn.GroupNorm(min(4, channels), channels, affine=True)
    return nn.Identity()


class ConvNet(nn.Module):
    """ConvNet-D with width W; ``embed`` gives the classifier's input (the feature embedding)."""

    def __init__(self, channels: int, size: tuple[int, int], num_classes: int, depth: int = 3, width: int = 128,
                 norm: str = "instance", act: str = "relu", pool: str = "avg") -> None:
        super().__init__()
        if depth < 1:
            raise DistillsetError(f"ConvNet depth must be at least 1, got {depth}")
        h, w = size
        pad_first = 3 if (h, w) == (28, 28) else 1
        layers: list[nn.Module] = []
        in_ch = channels
        for d in range(depth):
            pad = pad_first if d == 0 else 1
            layers.append(nn.Conv2d(in_ch, width, kernel_size=3, padding=pad))
            h, w = h + 2 * pad - 2, w + 2 * pad - 2
            layers.append(make_norm2d(norm, width, h, w))
            layers.append(make_activation(act))
            if pool != "none":
                if h < 2 or w < 2:
                    raise DistillsetError(
                        f"ConvNet of depth {depth} with pooling cannot take {size[0]}x{size[1]} inputs: the feature map "
                        f"is {h}x{w} before pooling layer {d + 1}; use a smaller depth or pool 'none'"
                    )
                layers.append(AvgPool2x2() if pool == "avg" else nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            in_ch = width
        self.features = nn.Sequential(*layers)
        self.embed_dim = width * h * w
        self.classifier = nn.Linear(self.embed_dim, num_classes)

    def embed(self, x):
        return self.features(x).flatten(1)

    def forward(self, x):
        return self.classifier(self.embed(x))


class MLP(nn.Module):
    """flatten -> 128 -> 128 -> classes with ReLU (the DC papers' MLP)."""

    def __init__(self, channels: int, size: tuple[int, int], num_classes: int, width: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(channels * size[0] * size[1], width), nn.ReLU(),
                                  nn.Linear(width, width), nn.ReLU())
        self.embed_dim = width
        self.classifier = nn.Linear(width, num_classes)

    def embed(self, x):
        return self.body(x)

    def forward(self, x):
        return self.classifier(self.embed(x))
