"""The evaluation protocol: it learns, it is reproducible, soft labels and NaN runs are handled."""

from __future__ import annotations

import statistics

import pytest
import torch

from distillset.data import real_data
from distillset.evaluation import evaluate_synset, format_table
from distillset.driver import make_coreset


def test_learns_and_is_reproducible(digits):
    synset = make_coreset("random", real_data(digits), ipc=10, seed=0)
    first = evaluate_synset(synset, digits.test_images, digits.test_labels, models=["convnet", "mlp"], runs=2, epochs=60, seed=3)
    again = evaluate_synset(synset, digits.test_images, digits.test_labels, models=["convnet", "mlp"], runs=2, epochs=60, seed=3)
    other = evaluate_synset(synset, digits.test_images, digits.test_labels, models=["convnet"], runs=2, epochs=60, seed=4)
    conv = first.results["convnet"]
    assert conv.mean > 0.5, conv.accs  # chance is 0.1
    assert first.results["mlp"].mean > 0.5
    assert first.as_dict()["results"] == again.as_dict()["results"]
    assert other.results["convnet"].accs != conv.accs
    assert len(conv.accs) == 2 and abs(conv.std - statistics.pstdev(conv.accs)) < 1e-12
    assert first.config["selection"] == "final epoch"
    assert "convnet" in format_table(first)
    # One run alone (how long evaluations are stored run by run) is that run of the full evaluation.
    second = evaluate_synset(synset, digits.test_images, digits.test_labels, models=["mlp"], runs=2, epochs=60, seed=3, run_indices=[1])
    assert second.results["mlp"].accs == [first.results["mlp"].accs[1]]


def test_soft_labels_are_used(digits):
    synset = make_coreset("random", real_data(digits), ipc=5, seed=0)
    # soft labels that point at the wrong class: a network trained on them must score near zero
    wrong = torch.nn.functional.one_hot((synset.labels + 1) % 10, 10).float() * 20
    synset.soft_labels = wrong
    soft = evaluate_synset(synset, digits.test_images, digits.test_labels, runs=1, epochs=40)
    hard = evaluate_synset(synset, digits.test_images, digits.test_labels, runs=1, epochs=40, use_soft_labels=False)
    assert soft.config["soft_labels"] and soft.results["convnet"].mean < 0.2 < hard.results["convnet"].mean


def test_diverging_runs_are_reported_not_averaged(digits):
    synset = make_coreset("random", real_data(digits), ipc=2, seed=0)
    results = evaluate_synset(synset, digits.test_images, digits.test_labels, models=["mlp"], runs=2, epochs=60, lr=1e12)
    r = results.results["mlp"]
    assert len(r.failed) == 2 and r.accs == [] and "became" in r.failed[0]
    assert results.as_dict()["results"]["mlp"]["failed"]


def test_learned_lr_is_the_default(digits):
    synset = make_coreset("random", real_data(digits), ipc=2, seed=0)
    synset.lr = torch.tensor(0.05)
    results = evaluate_synset(synset, digits.test_images, digits.test_labels, runs=1, epochs=1)
    assert abs(results.config["lr"] - 0.05) < 1e-9


def test_batched_training_matches_sequential(digits):
    """vmap over stacked parameters gives the same networks as the loop (same inits, same shuffles)."""
    synset = make_coreset("random", real_data(digits), ipc=10, seed=0)
    kwargs = dict(models=["convnet", "mlp"], runs=3, epochs=8, seed=1, batch_size=32)
    seq = evaluate_synset(synset, digits.test_images, digits.test_labels, strategy="sequential", **kwargs)
    bat = evaluate_synset(synset, digits.test_images, digits.test_labels, strategy="batched", **kwargs)
    for name in ("convnet", "mlp"):
        a, b = seq.results[name].accs, bat.results[name].accs
        assert max(abs(x - y) for x, y in zip(a, b)) <= 2 / len(digits.test_labels), (name, a, b)


def test_batched_networks_equal_sequential_parameters(digits):
    from distillset.evaluation.batched import train_models_batched
    from distillset.training import TrainConfig, train_model
    from distillset.models import build_model

    # Instance norm over the 2x2 maps of an 8x8 input amplifies reduction-order noise, so the exact
    # comparison uses networks without it; the accuracy comparison above covers the default ConvNet.
    synset = make_coreset("random", real_data(digits), ipc=5, seed=0)
    for model, schedule in (("convnet-nonorm", "reference"), ("mlp", "reference"), ("mlp", "half")):
        config = TrainConfig(epochs=6, batch_size=16, schedule=schedule)
        seq, bat = [], []
        for run in range(2):
            seq.append(build_model(model, (1, 8, 8), 10, torch.Generator().manual_seed(run)))
            bat.append(build_model(model, (1, 8, 8), 10, torch.Generator().manual_seed(run)))
            train_model(seq[-1], synset.images, synset.labels, config, torch.Generator().manual_seed(100 + run))
        failed = train_models_batched(bat, synset.images, synset.labels, config, [torch.Generator().manual_seed(100 + r) for r in range(2)])
        assert failed == [False, False]
        for s, b in zip(seq, bat):
            for (name, ps), pb in zip(s.named_parameters(), b.parameters()):
                torch.testing.assert_close(ps, pb, rtol=1e-5, atol=1e-6, msg=f"{model} {name}")


def test_reference_schedule_is_the_reference_codes_evaluation_loop(digits):
    """The DC/DSA/DM/MTT code's evaluate_synset: ``for ep in range(Epoch + 1)`` passes, and after pass
    ``Epoch // 2 + 1`` a new SGD at lr x0.1 (momentum restarts). Written out here with torch.optim.SGD, it must give
    bitwise the parameters train_model gives under the "reference" schedule, and not those of "half"."""
    import pytest
    import torch.nn.functional as F

    from distillset.errors import DistillsetError
    from distillset.models import build_model
    from distillset.training import TrainConfig, train_model

    synset = make_coreset("random", real_data(digits), ipc=5, seed=0)
    images, labels, epochs, batch, lr = synset.images, synset.labels, 6, 16, 0.01

    def reference_loop():
        net = build_model("mlp", (1, 8, 8), 10, torch.Generator().manual_seed(0))
        shuffle = torch.Generator().manual_seed(1)
        optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=0.0005)
        for ep in range(epochs + 1):
            order = torch.randperm(len(labels), generator=shuffle)
            for start in range(0, len(labels), batch):
                idx = order[start:start + batch]
                loss = F.cross_entropy(net(images[idx]), labels[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if ep in [epochs // 2 + 1]:
                lr_now = lr * 0.1
                optimizer = torch.optim.SGD(net.parameters(), lr=lr_now, momentum=0.9, weight_decay=0.0005)
        return net

    def ours(schedule):
        net = build_model("mlp", (1, 8, 8), 10, torch.Generator().manual_seed(0))
        return train_model(net, images, labels, TrainConfig(epochs=epochs, lr=lr, batch_size=batch, schedule=schedule),
                           torch.Generator().manual_seed(1))

    expected = reference_loop().state_dict()
    for name, value in ours("reference").state_dict().items():
        assert torch.equal(value, expected[name]), name
    assert not all(torch.equal(v, expected[k]) for k, v in ours("half").state_dict().items())
    with pytest.raises(DistillsetError, match="unknown training schedule"):
        TrainConfig(schedule="cosine")


def test_batched_reports_diverged_runs(digits):
    synset = make_coreset("random", real_data(digits), ipc=2, seed=0)
    results = evaluate_synset(synset, digits.test_images, digits.test_labels, models=["mlp"], runs=2, epochs=5, lr=1e12, strategy="batched")
    assert len(results.results["mlp"].failed) == 2


def test_models_that_cannot_take_the_shape_are_refused_before_training(digits):
    from distillset.errors import DistillsetError

    synset = make_coreset("random", real_data(digits), ipc=1, seed=0)
    with pytest.raises(DistillsetError, match="'lenet' cannot take 1x8x8"):
        evaluate_synset(synset, digits.test_images, digits.test_labels, models=["convnet", "lenet"], runs=1, epochs=1000)


def test_stored_run_by_run_evaluation_trains_pending_runs_together_where_evaluate_would(digits):
    """An experiment's resumable evaluation takes the batched path wherever a full evaluation would (CUDA), so its
    numbers are the `distillset evaluate` numbers; the runs it already holds are skipped."""
    from distillset.evaluation import each_run

    synset = make_coreset("random", real_data(digits), ipc=5, seed=0)
    kwargs = dict(epochs=6, seed=2, batch_size=32, strategy="batched")
    full = evaluate_synset(synset, digits.test_images, digits.test_labels, models=["mlp"], runs=4, **kwargs)
    stored = list(each_run(synset, digits.test_images, digits.test_labels, "mlp", 4, skip={1}, **kwargs))
    assert [r[0] for r in stored] == [0, 2, 3]
    assert [r[1] for r in stored] == [full.results["mlp"].outcomes[r] for r in (0, 2, 3)]
    alone = list(each_run(synset, digits.test_images, digits.test_labels, "mlp", 4, skip={0, 1, 2}, **kwargs))
    assert alone[0][1] == full.results["mlp"].outcomes[3]


@pytest.mark.parametrize("schedule", ["half", "reference"])
def test_a_training_run_cut_off_resumes_from_its_checkpoint_with_the_same_bytes(digits, tmp_path, schedule):
    """The whole-data ledger rows train one network for hours: cut off at an epoch (here exactly where the lr
    drops, where the reference schedule also restarts the momentum, and with augmentation drawing from the
    shuffle generator), the run resumes from its checkpoint and ends with the parameters of a run never cut off;
    a checkpoint of another schedule is refused."""

    from distillset.augment.dc import DCAugment
    from distillset.errors import DistillsetError
    from distillset.models import build_model
    from distillset.training import TrainConfig, train_model

    synset = make_coreset("random", real_data(digits), ipc=5, seed=0)
    config = TrainConfig(epochs=6, batch_size=16, schedule=schedule)
    augment = DCAugment()

    def fresh():
        return build_model("convnet", (1, 8, 8), 10, torch.Generator().manual_seed(0))

    whole = train_model(fresh(), synset.images, synset.labels, config, torch.Generator().manual_seed(1), augment)

    class CutOff(Exception):
        pass

    def cut_where_the_lr_drops(epoch: int) -> None:
        if epoch == config.decay_pass:
            raise CutOff

    path = tmp_path / "run0.safetensors"
    with pytest.raises(CutOff):
        train_model(fresh(), synset.images, synset.labels, config, torch.Generator().manual_seed(1), augment,
                    on_epoch=cut_where_the_lr_drops, checkpoint=path, checkpoint_seconds=0)
    assert path.is_file()
    with pytest.raises(DistillsetError, match="another training run"):
        train_model(fresh(), synset.images, synset.labels, TrainConfig(epochs=8, batch_size=16), torch.Generator().manual_seed(1),
                    augment, checkpoint=path)
    resumed = train_model(fresh(), synset.images, synset.labels, config, torch.Generator().manual_seed(1), augment,
                          checkpoint=path, checkpoint_seconds=0)
    assert not path.exists()  # a finished run leaves no checkpoint behind
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DistillsetError, match="not a readable training checkpoint"):
        train_model(fresh(), synset.images, synset.labels, config, torch.Generator().manual_seed(1), checkpoint=path)


def test_evaluation_with_a_checkpoint_folder_gives_the_same_accuracies_and_leaves_nothing(digits, tmp_path):
    synset = make_coreset("random", real_data(digits), ipc=5, seed=0)
    kwargs = dict(models=["mlp"], runs=2, epochs=4, seed=2, strategy="sequential")
    plain = evaluate_synset(synset, digits.test_images, digits.test_labels, **kwargs)
    saved = evaluate_synset(synset, digits.test_images, digits.test_labels, checkpoint_dir=tmp_path / "ck", **kwargs)
    assert saved.results["mlp"].accs == plain.results["mlp"].accs
    assert list((tmp_path / "ck").iterdir()) == []
