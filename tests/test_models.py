"""The model registry and the ConvNet family."""

from __future__ import annotations

import pytest
import torch

from distillset.errors import DistillsetError
from distillset.models import build_model


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_convnet_parameter_counts():
    assert count(build_model("convnet", (3, 32, 32), 10)) == 320_010
    mnist = build_model("convnet", (1, 28, 28), 10)
    assert mnist.embed_dim == 128 * 4 * 4  # first conv pads by 3: 32 -> 16 -> 8 -> 4
    assert mnist.embed(torch.zeros(2, 1, 28, 28)).shape == (2, 2048)


def test_variants_by_name():
    m = build_model("convnet-d4-w32-bn-leakyrelu-maxpool", (3, 32, 32), 10)
    assert sum(isinstance(l, torch.nn.Conv2d) for l in m.modules()) == 4
    assert any(isinstance(l, torch.nn.BatchNorm2d) for l in m.modules())
    assert any(isinstance(l, torch.nn.MaxPool2d) for l in m.modules())
    assert m.embed_dim == 32 * 2 * 2
    assert build_model("mlp", (1, 28, 28), 10)(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_bad_names_and_shapes():
    with pytest.raises(DistillsetError, match="unknown model 'resnet99'.*convnet"):
        build_model("resnet99", (3, 32, 32), 10)
    with pytest.raises(DistillsetError, match="unknown ConvNet variant 'xx'"):
        build_model("convnet-xx", (3, 32, 32), 10)
    with pytest.raises(DistillsetError, match="cannot take 8x8 inputs"):
        build_model("convnet-d4", (1, 8, 8), 10)


def test_initialisation_follows_the_generator():
    a = build_model("convnet", (1, 28, 28), 10, torch.Generator().manual_seed(1))
    b = build_model("convnet", (1, 28, 28), 10, torch.Generator().manual_seed(1))
    c = build_model("convnet", (1, 28, 28), 10, torch.Generator().manual_seed(2))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.features[0].weight, c.features[0].weight)
    bound = 1 / (9 ** 0.5)
    assert a.features[0].weight.abs().max() <= bound


ZOO = ["mlp", "lenet", "alexnet", "alexnet-bn", "vgg11", "vgg11-bn", "resnet18", "resnet18-bn", "resnet18-ap", "resnet18-bn-ap"]


@pytest.mark.parametrize("name", ZOO)
def test_zoo_builds_for_every_dataset_shape(name):
    for shape, classes in (((1, 28, 28), 10), ((3, 32, 32), 100)):
        model = build_model(name, shape, classes, torch.Generator().manual_seed(0))
        x = torch.randn(2, *shape)
        assert model(x).shape == (2, classes)
        assert model.embed(x).shape == (2, model.embed_dim)


def test_standard_parameter_counts():
    assert count(build_model("lenet", (3, 32, 32), 10)) == 62_006
    assert count(build_model("resnet18", (3, 32, 32), 10)) == 11_173_962
    assert count(build_model("resnet18-bn", (3, 32, 32), 10)) == 11_173_962
    assert count(build_model("mlp", (1, 28, 28), 10)) == 784 * 128 + 128 + 128 * 128 + 128 + 1290


def test_reference_spellings_and_too_small_inputs():
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in build_model("ResNet18BN_AP", (3, 32, 32), 10).modules())
    with pytest.raises(DistillsetError, match="'vgg11' cannot take"):
        build_model("vgg11", (1, 8, 8), 10)
