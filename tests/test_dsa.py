"""DSA: each family does what the paper says, draws are seeded, siamese means one shared transform."""

from __future__ import annotations

import pytest
import torch

from distillset.augment import DSA, strategy_for
from distillset.errors import DistillsetError


def images(n=4, c=3, h=16, w=16, seed=0):
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def only(family: str, rows: int, size=(16, 16), seed=0):
    dsa = DSA(family)
    return dsa, dsa.draw(rows, size, torch.Generator().manual_seed(seed))


def test_flip_and_crop_are_exact():
    x = images()
    dsa, p = only("flip", 4)
    out = dsa.apply(x, p, torch.arange(4))
    for i in range(4):
        assert torch.equal(out[i], x[i].flip(2) if p.flip[i] else x[i])
    dsa, p = only("crop", 4, seed=3)
    out = dsa.apply(x, p, torch.arange(4))
    for i in range(4):
        dy, dx = p.shift[i].tolist()
        assert max(abs(dy), abs(dx)) <= 2  # 1/8 of 16
        expected = torch.zeros_like(x[i])
        src = x[i][:, max(0, -dy):16 - max(0, dy), max(0, -dx):16 - max(0, dx)]
        expected[:, max(0, dy):max(0, dy) + src.shape[1], max(0, dx):max(0, dx) + src.shape[2]] = src
        assert torch.equal(out[i], expected)


def test_cutout_zeroes_one_half_size_square():
    x = images().abs() + 1  # no zeros of its own
    dsa, p = only("cutout", 4, seed=1)
    out = dsa.apply(x, p, torch.arange(4))
    for i in range(4):
        zero = (out[i] == 0).all(0)
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert len(rows) <= 8 and len(cols) <= 8 and zero.sum() == len(rows) * len(cols)
        assert zero.sum() > 0


def test_color_ranges_and_identity_geometry():
    dsa, p = only("color", 1000)
    assert p.brightness.abs().max() <= 0.5 and 0 <= p.saturation.min() and p.saturation.max() <= 2
    assert 0.5 <= p.contrast.min() and p.contrast.max() <= 1.5
    dsa, p = only("scale_rotate", 1000)
    assert p.scale.min() >= 1 / 1.2 - 1e-6 and p.scale.max() <= 1.2 + 1e-6
    assert p.angle.abs().max() <= torch.pi * 15 / 180 + 1e-6
    x = images(1)
    p.scale[0] = torch.tensor([1.0, 1.0])
    p.family[0] = 0
    torch.testing.assert_close(DSA("scale").apply(x, p, torch.zeros(1, dtype=torch.long)), x, atol=1e-5, rtol=0)


def test_draws_follow_the_generator():
    dsa = DSA()
    x = images(8)
    a = dsa(x, torch.Generator().manual_seed(5))
    b = dsa(x, torch.Generator().manual_seed(5))
    c = dsa(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_siamese_uses_one_transform_for_all_batches():
    dsa = DSA()
    real, syn = images(5, seed=1), images(2, seed=2)
    for seed in range(12):
        out_real, out_syn = dsa.siamese([real, syn], torch.Generator().manual_seed(seed))
        joint = dsa.siamese([torch.cat([real, syn])], torch.Generator().manual_seed(seed))[0]
        torch.testing.assert_close(torch.cat([out_real, out_syn]), joint)


@pytest.mark.parametrize("family", ["color", "crop", "cutout", "flip", "scale", "rotate"])
def test_every_family_is_differentiable(family):
    x = images(3).requires_grad_()
    out = DSA(family)(x, torch.Generator().manual_seed(0))
    (out ** 2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_strategy_names():
    assert "flip" not in strategy_for("mnist") and "flip" in strategy_for("fashion-mnist")
    with pytest.raises(DistillsetError, match="unknown DSA family warp"):
        DSA("color_warp")
