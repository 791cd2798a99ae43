"""Dataset Quantization (GraphCut bins, patch dropping) and pre-trained-model guidance, on digits."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from distillset.data import real_data
from distillset.errors import DistillsetError
from distillset.methods.guidance import Guidance, PoolConfig, train_pool
from distillset.methods.quantization import blur_fill, drop_patches, graphcut_bins, sample_bins
from distillset.models import build_model
from distillset.synset import SynSet

MODEL = "convnet-d2-w32"
QUIET = dict(log=lambda message: None)


def _graphcut_value(sim: torch.Tensor, pool: torch.Tensor, chosen: list[int], lam: float) -> float:
    s = torch.tensor(chosen, dtype=torch.long)
    return float(sim[pool][:, s].sum() - lam * sim[s][:, s].sum())


def test_greedy_bins_follow_the_graphcut_marginal_gains():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(30, 6, generator=g).abs()
    bins = graphcut_bins(features, 3, lam=1.0)
    unit = F.normalize(features.double(), dim=1)
    sim = unit @ unit.T
    # the first bin, re-derived by brute force: each pick maximises f(S + j) - f(S) over the whole pool
    pool, chosen = torch.arange(30), []
    for _ in range(10):
        gains = {j: _graphcut_value(sim, pool, chosen + [j], 1.0) - (_graphcut_value(sim, pool, chosen, 1.0) if chosen else 0.0)
                 for j in range(30) if j not in chosen}
        chosen.append(max(gains, key=gains.get))
    assert bins[0].tolist() == chosen
    everything = torch.cat(bins)
    assert sorted(everything.tolist()) == list(range(30)) and [b.numel() for b in bins] == [10, 10, 10]


def test_sampling_takes_the_same_share_of_every_bin():
    bin_list = [torch.arange(0, 40), torch.arange(40, 80), torch.arange(80, 100)]
    picks = sample_bins(bin_list, 10, torch.Generator().manual_seed(0))
    assert picks.numel() == 10 and len(set(picks.tolist())) == 10
    assert [int(((picks >= lo) & (picks < hi)).sum()) for lo, hi in ((0, 40), (40, 80), (80, 100))] == [4, 4, 2]


def test_dq_coreset_from_the_command_line_with_a_ratio(tmp_path, digits, capsys):
    from distillset.cli import main

    assert main(["coreset", "--method", "dq", "--dataset", "digits", "--ratio", "0.05", "--bins", "4",
                 "--feature-model", MODEL, "--out", str(tmp_path / "dq")]) == 0
    synset = SynSet.load(tmp_path / "dq" / "synset.safetensors")
    assert synset.method == "coreset:dq" and synset.ipc == 7 and len(synset) == 70  # 0.05 x 1437 / 10 = 7.2
    real = real_data(digits, "train")
    for image, label in zip(synset.images, synset.labels):  # real, selected images of their own class
        assert (real.images[real.labels == label] == image).flatten(1).all(1).any()
    record = json.loads((tmp_path / "dq" / "run.json").read_text())
    assert record["config"]["ratio"] == 0.05 and record["config"]["bins"] == 4
    assert main(["coreset", "--method", "random", "--dataset", "digits", "--ipc", "2", "--bins", "3", "--out", str(tmp_path / "r")]) == 2
    assert "--bins does not apply to --method random" in capsys.readouterr().err


def test_patch_dropping_replaces_the_least_salient_patches(digits):
    real = real_data(digits, "train")
    model = build_model(MODEL, real.shape, 10, torch.Generator().manual_seed(0))
    images, labels = real.images[:6], real.labels[:6]
    filled, keep = drop_patches(images, labels, model, patch=2, drop=0.25)
    per_image_dropped = (~keep).flatten(1).float().mean(1)
    assert torch.allclose(per_image_dropped, torch.full((6,), 0.25))  # 4 of the 16 2x2 patches of an 8x8 image
    assert torch.equal(filled[keep], images[keep]) and not torch.equal(filled, images)
    assert torch.equal(filled[~keep], blur_fill(images, keep, 2)[~keep])
    with pytest.raises(DistillsetError, match="does not divide"):
        drop_patches(images, labels, model, patch=3)


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pool")
    train_pool("digits", out, PoolConfig(models=[MODEL], seeds=[0, 1], epochs=[1, 2], lr=0.05), **QUIET)
    return out


def test_pool_layout_and_resume(pool_dir, monkeypatch):
    index = json.loads((pool_dir / "index.json").read_text())
    assert sorted(m["file"] for m in index["members"]) == sorted(f"{MODEL}-s{s}-e{e}.safetensors" for s in (0, 1) for e in (1, 2))
    assert all(m["test_accuracy"] > 0.3 for m in index["members"] if m["epoch"] == 2)
    import distillset.methods.guidance as guidance

    monkeypatch.setattr(guidance, "build_model", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    train_pool("digits", pool_dir, PoolConfig(models=[MODEL], seeds=[0, 1], epochs=[1, 2]), **QUIET)  # all there: no work


def test_guide_specifications_select_members(pool_dir, digits):
    real = real_data(digits, "train")
    guide = Guidance(f"{pool_dir}:epoch=2", "digits", real.shape, 10, "cpu")
    assert len(guide.members) == 2 and all("-e2" in d for d in guide.description)
    single = Guidance(str(pool_dir / f"{MODEL}-s1-e1.safetensors"), "digits", real.shape, 10, "cpu")
    assert single.description == [f"{pool_dir.name}/{MODEL}-s1-e1.safetensors"]
    with pytest.raises(DistillsetError, match="unknown pool filter 'depth'"):
        Guidance(f"{pool_dir}:depth=2", "digits", real.shape, 10, "cpu")
    with pytest.raises(DistillsetError, match="no member of pool"):
        Guidance(f"{pool_dir}:epoch=9", "digits", real.shape, 10, "cpu")
    with pytest.raises(DistillsetError, match="was trained on digits"):
        Guidance(str(pool_dir), "mnist", (1, 28, 28), 10, "cpu")
    with pytest.raises(DistillsetError, match="does not exist"):
        Guidance(str(pool_dir / "nowhere"), "digits", real.shape, 10, "cpu")


def test_guidance_adds_the_pools_cross_entropy_to_dm(pool_dir, digits):
    from distillset.methods.distribution_matching import DistributionMatching, DistributionMatchingConfig

    real = real_data(digits, "train")
    plain = DistributionMatching(real, DistributionMatchingConfig(ipc=2, model=MODEL))
    guided = DistributionMatching(real, DistributionMatchingConfig(ipc=2, model=MODEL, guide_models=f"{pool_dir}:seed=0;epoch=2",
                                                                   guide_weight=2.0))
    state = plain.initial_state()
    assert plain.guidance_loss(state.images, state.labels, 0) == 0
    member = guided.guidance.members[0][1]
    expected = 2.0 * F.cross_entropy(member(state.images), state.labels)
    assert torch.allclose(guided.guidance_loss(state.images, state.labels, 0), expected, rtol=1e-5)
    # a few guided steps lower the guides' loss on the synthetic images
    before = float(guided.guidance_loss(state.images, state.labels, 0))
    for _ in range(10):
        guided.step(state)
    assert float(guided.guidance_loss(state.images, state.labels, 0)) < before


def test_guided_dc_runs_from_the_command_line(pool_dir, tmp_path):
    from distillset.cli import main

    assert main(["condense", "--method", "dc", "--dataset", "digits", "--ipc", "1", "--model", MODEL, "--iterations", "2",
                 "--no-compile", "--guide-models", str(pool_dir), "--guide-weight", "0.5", "--no-progress",
                 "--out", str(tmp_path / "dc")]) == 0
    record = json.loads((tmp_path / "dc" / "run.json").read_text())
    assert record["config"]["guide_models"] == str(pool_dir) and record["config"]["guide_weight"] == 0.5
