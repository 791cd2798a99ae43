"""Coreset selection rules against brute-force references, the cached feature network, and the CLI."""

from __future__ import annotations


import pytest
import torch

from distillset.cli import main
from distillset.data import real_data
from distillset.driver import make_coreset
from distillset.methods import herding, k_center, most_forgotten
from distillset.methods.feature_network import train_feature_network
from distillset.synset import SynSet


def reference_herding(features: torch.Tensor, k: int) -> list[int]:
    mu = features.mean(0)
    chosen: list[int] = []
    for _ in range(k):
        best = min((i for i in range(len(features)) if i not in chosen),
                   key=lambda i: float(((mu - features[chosen + [i]].mean(0)) ** 2).sum()))
        chosen.append(best)
    return chosen


def test_herding_matches_brute_force():
    features = torch.randn(40, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert herding(features, 8).tolist() == reference_herding(features, 8)


def test_herding_mean_beats_random_subsets():
    features = torch.randn(200, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    chosen = herding(features, 5)
    err = float(((features[chosen].mean(0) - features.mean(0)) ** 2).sum())
    g = torch.Generator().manual_seed(2)
    random_errs = [float(((features[torch.randperm(200, generator=g)[:5]].mean(0) - features.mean(0)) ** 2).sum()) for _ in range(50)]
    assert err < min(random_errs)


def test_k_center_is_greedy_farthest_point():
    features = torch.randn(30, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    chosen = k_center(features, 6).tolist()
    assert chosen[0] == int(torch.argmin(((features - features.mean(0)) ** 2).sum(1)))
    for t in range(1, 6):
        dist = torch.cdist(features, features[chosen[:t]]).min(1).values
        assert chosen[t] == int(torch.argmax(dist))
    assert len(set(chosen)) == 6
    assert herding(features, 1).tolist() == chosen[:1]  # one per class: k-center and herding pick the same (ledger)


def test_k_center_picks_distinct_rows_where_rows_repeat():
    """Repeated embeddings tie at distance 0 with the chosen rows: each row is still picked once, and a pool taken
    whole (GCond's r = 1 on a graph) is every row."""
    features = torch.tensor([[0.0], [0.0], [1.0], [1.0], [0.0]], dtype=torch.float64)
    for k in range(1, 6):
        chosen = k_center(features, k).tolist()
        assert len(set(chosen)) == k, chosen
    assert sorted(k_center(features, 5).tolist()) == [0, 1, 2, 3, 4]


def test_most_forgotten_order_and_ties():
    events = torch.tensor([0, 3, 1, 3, 0, 2])
    learned = torch.tensor([True, True, True, True, False, True])
    picked = most_forgotten(events, learned, 3, torch.Generator().manual_seed(0)).tolist()
    assert picked[0] == 4 and set(picked[1:]) == {1, 3}  # never learned first, then the two with 3 events
    orders = {tuple(most_forgotten(events, learned, 3, torch.Generator().manual_seed(s)).tolist()) for s in range(20)}
    assert len(orders) == 2  # the tie between 1 and 3 is broken at random, seeded


def test_most_forgotten_never_learned_conventions():
    """Toneva et al. rank a never-learned image first; DeepCore counts it at zero events, tied with the unforgettable."""
    events = torch.tensor([0, 3, 1, 3, 0, 2])
    learned = torch.tensor([True, True, True, True, False, True])
    zero = most_forgotten(events, learned, 4, torch.Generator().manual_seed(0), never_learned="zero").tolist()
    assert set(zero[:2]) == {1, 3} and zero[2:] == [5, 2]
    last = {most_forgotten(events, learned, 6, torch.Generator().manual_seed(s), never_learned="zero")[4:].tolist()[0]
            for s in range(20)}
    assert last == {0, 4}  # the never-learned image ties with the unforgettable one, in a seeded random order
    with pytest.raises(ValueError, match="never_learned"):
        most_forgotten(events, learned, 1, torch.Generator(), never_learned="first")


def test_feature_network_is_cached_and_counts_forgetting(digits):
    real = real_data(digits)
    first = train_feature_network(real, "convnet", epochs=4, seed=5)
    second = train_feature_network(real, "convnet", epochs=4, seed=5)
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(first.forgetting_events, second.forgetting_events)
    assert first.ever_learned.float().mean() > 0.5 and first.forgetting_events.sum() > 0


def test_feature_network_cut_off_resumes_with_its_forgetting_counts(digits, tmp_path, monkeypatch):
    """The forgetting baseline's network (20 epochs on the whole training set, hours on a CPU) is resumable: cut after
    epoch 2, the rerun ends with the bytes and the forgetting counts of a training never cut."""
    real = real_data(digits)
    monkeypatch.setenv("DISTILLSET_CACHE", str(tmp_path / "whole"))
    whole = train_feature_network(real, "convnet", epochs=4, seed=3)

    class CutOff(Exception):
        pass

    def cut_at_2(message: str) -> None:
        if message.startswith("feature network epoch 2/"):
            raise CutOff

    monkeypatch.setenv("DISTILLSET_CACHE", str(tmp_path / "cut"))
    monkeypatch.setattr("distillset.training.time.monotonic", lambda: 1e9 * next(ticks))  # every epoch is a minute late
    ticks = iter(range(10 ** 6))
    with pytest.raises(CutOff):
        train_feature_network(real, "convnet", epochs=4, seed=3, log=cut_at_2)
    assert list((tmp_path / "cut").rglob("*.partial.safetensors"))  # the state after epoch 2, counts included
    resumed = train_feature_network(real, "convnet", epochs=4, seed=3)
    assert not list((tmp_path / "cut").rglob("*.partial.safetensors"))
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(whole.forgetting_events, resumed.forgetting_events) and whole.forgetting_events.sum() > 0
    assert torch.equal(whole.ever_learned, resumed.ever_learned)


@pytest.mark.parametrize("method", ["herding", "kcenter", "forgetting", "random"])
def test_coreset_methods_are_class_balanced_real_images(digits, method):
    real = real_data(digits)
    synset = make_coreset(method, real, 4, seed=0, feature_epochs=2)
    assert torch.bincount(synset.labels).tolist() == [4] * 10
    matches = (synset.images.flatten(1)[:, None, :] == real.images.flatten(1)[None]).all(-1)
    assert matches.any(1).all()  # every selected image is a real training image
    assert int(matches.any(0).sum()) == 40  # and all are distinct
    again = make_coreset(method, real, 4, seed=0, feature_epochs=2)
    assert torch.equal(again.images, synset.images)


def test_coreset_cli_herding(tmp_path, capsys):
    code = main(["coreset", "--method", "herding", "--dataset", "digits", "--ipc", "2", "--feature-epochs", "1", "--out", str(tmp_path / "h")])
    assert code == 0, capsys.readouterr().err
    synset = SynSet.load(tmp_path / "h" / "synset.safetensors")
    assert synset.method == "coreset:herding" and synset.config["feature_epochs"] == 1 and len(synset) == 20
