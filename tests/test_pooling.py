"""The 2x2 average pooling of the ConvNet family: bitwise PyTorch's, through every autograd path the methods use."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import grad, vmap

from distillset.models import build_model
from distillset.models.pooling import AvgPool2x2, avg_pool_2x2


def reference(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 2)


@pytest.mark.parametrize("shape", [(4, 3, 8, 8), (2, 5, 6, 10), (3, 2, 7, 9), (1, 1, 2, 2)])
def test_forward_and_backward_are_bitwise_avg_pool2d(shape):
    generator = torch.Generator().manual_seed(0)
    # values across many magnitudes, so that a different order of the four additions would round differently
    x = (torch.randn(*shape, generator=generator) * torch.rand(*shape, generator=generator).pow(8) * 1e3).requires_grad_()
    expected, ours = reference(x), avg_pool_2x2(x)
    assert torch.equal(expected, ours)
    upstream = torch.randn(expected.shape, generator=generator)
    assert torch.equal(torch.autograd.grad(expected, x, upstream)[0], torch.autograd.grad(ours, x, upstream)[0])


def test_second_order_and_torch_func_paths():
    """DC matches gradients (create_graph): its second-order terms have PyTorch's bits too; the batched evaluation
    and the experts vmap grad over networks."""
    assert torch.autograd.gradgradcheck(avg_pool_2x2, torch.randn(2, 2, 4, 4, dtype=torch.double, requires_grad=True))
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(5, 3, 8, 8, generator=generator)
    weights = torch.randn(3, 4, 3, 3, 3, generator=generator)

    def loss(pool, w):
        return pool(F.conv2d(x, w, padding=1)).pow(2).sum()

    def curvature(pool, w):
        w = w.clone().requires_grad_()
        (g,) = torch.autograd.grad(loss(pool, w), w, create_graph=True)
        return torch.autograd.grad(g.pow(3).sum(), w)[0]

    assert torch.equal(curvature(avg_pool_2x2, weights[0]), curvature(reference, weights[0]))
    batched = vmap(grad(lambda w: loss(avg_pool_2x2, w)))(weights)
    torch.testing.assert_close(batched, vmap(grad(lambda w: loss(reference, w)))(weights))


def test_a_convnet_trains_to_the_same_bits_as_with_nn_avgpool2d():
    def trained(swap: bool) -> list[torch.Tensor]:
        net = build_model("convnet", (1, 28, 28), 10, generator=torch.Generator().manual_seed(3))
        if swap:
            for i, layer in enumerate(net.features):
                if isinstance(layer, AvgPool2x2):
                    net.features[i] = nn.AvgPool2d(2)
        data = torch.Generator().manual_seed(4)
        x, y = torch.randn(16, 1, 28, 28, generator=data), torch.randint(0, 10, (16,), generator=data)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        for _ in range(3):
            optimizer.zero_grad()
            F.cross_entropy(net(x), y).backward()
            optimizer.step()
        return [p.detach() for p in net.parameters()]

    ours, torchs = trained(swap=False), trained(swap=True)
    assert sum(isinstance(m, AvgPool2x2) for m in build_model("convnet", (1, 28, 28), 10).modules()) == 3
    assert all(torch.equal(a, b) for a, b in zip(ours, torchs))
