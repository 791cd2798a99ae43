"""Faithful by default: behaviours that follow the official code of each method (README "Fidelity")."""

from __future__ import annotations

import json

import pytest
import torch

import distillset as ds
from distillset.augment import DSA, DCAugment, dc_strategy, make_augment
from distillset.errors import DistillsetError


# ---------------------------------------------------------------------------------------------- ZCA
def test_zca_is_fitted_on_raw_pixels_as_kornia_does(digits):
    """MTT/DATM: kornia's ZCAWhitening(eps=0.1) on ToTensor() images (raw [0, 1] pixels), unbiased covariance,
    T = U diag(1/sqrt(S + eps)) U^T from its SVD, applied as (x - mean) T."""
    real = ds.real_data(digits, "train")
    raw = torch.as_tensor(digits.train_images, dtype=torch.float64).reshape(len(real.images), -1) / 255
    mean = raw.mean(0)
    centred = raw - mean
    u, s, _ = torch.linalg.svd(centred.T @ centred / (raw.shape[0] - 1))
    reference = centred @ (u * torch.rsqrt(s + 0.1)) @ u.T
    white = real.whitened(0.1)
    order = torch.argsort(real.labels, stable=True)  # RealData keeps the file order
    assert torch.allclose(white.images.reshape(len(real.images), -1).double(), reference, atol=1e-5)
    assert white.mean == (0.0,) and white.std == (1.0,)  # the pipeline a set records: pixels/255, then ZCA
    synset = ds.SynSet.from_real(white, white.images[order[:5]], white.labels[order[:5]], method="x", ipc=1)
    from distillset.evaluation import prepare_test_data

    test_x, _ = prepare_test_data(synset, digits.train_images[:20], digits.train_labels[:20], "cpu")
    assert torch.allclose(test_x.reshape(20, -1).double(), reference[:20], atol=1e-5)


# ---------------------------------------------------------------------------------------------- DSA
def test_non_siamese_dsa_draws_one_family_per_batch_with_per_image_parameters():
    dsa = DSA("color_crop_cutout_scale_rotate")
    generator = torch.Generator().manual_seed(0)
    families = set()
    for _ in range(30):
        params = dsa.draw_batch(16, (8, 8), generator)
        assert params.family.unique().numel() == 1  # the reference's mode 'S': one family for the batch
        assert params.angle.unique().numel() > 1  # ... with its parameters drawn per image
        families.add(int(params.family[0]))
    assert len(families) == 5  # every family is drawn over the batches


def test_non_siamese_dsa_transforms_a_whole_batch_with_one_family():
    dsa = DSA("cutout_flip")
    x = torch.arange(8 * 8, dtype=torch.float32).reshape(1, 1, 8, 8).repeat(32, 1, 1, 1) + 1
    generator = torch.Generator().manual_seed(3)
    for _ in range(10):
        out = dsa(x, generator)
        zeroed = (out == 0).flatten(1).any(1)  # cutout leaves zeros; a flip of positive pixels never does
        assert bool(zeroed.all()) or not bool(zeroed.any())


# ---------------------------------------------------------------------------------------------- DM with BatchNorm
def test_dm_with_batchnorm_embeds_all_classes_in_one_batch(digits):
    from distillset.methods.distribution_matching import DistributionMatching, DistributionMatchingConfig, _class_means

    real = ds.real_data(digits, "train")
    engine = DistributionMatching(real, DistributionMatchingConfig(ipc=2, model="convnet-d2-bn", dsa=False, batch_real=8))
    state = engine.initial_state()
    net = ds.build_model("convnet-d2-bn", real.shape, 10, torch.Generator().manual_seed(1))
    net.train()
    loss = engine.matching_loss(net, state.images, state.labels, torch.Generator().manual_seed(5))
    # the reference: every class's real images in ONE train-mode batch, the synthetic ones in another
    generator = torch.Generator().manual_seed(5)
    picks = torch.cat([real.sample_indices(c, 8, generator) for c in range(10)])
    with torch.no_grad():
        real_mean = _class_means(net.embed(real.images[picks]), real.labels[picks], 10)
    joint = ((real_mean - _class_means(net.embed(state.images), state.labels, 10)) ** 2).sum()
    torch.testing.assert_close(loss, joint)
    per_class = engine.matching_loss(net, state.images, state.labels, torch.Generator().manual_seed(5), batched=False)
    assert not torch.allclose(loss, per_class)  # per-class batches would give other statistics


# ---------------------------------------------------------------------------------------------- DC's evaluation augmentation
def test_dc_augmentation_is_chosen_as_the_dc_code_does():
    assert dc_strategy("mnist", "convnet") == "crop_scale_rotate"
    assert dc_strategy("mnist", "ConvNetBN") == "crop_noise" and dc_strategy("fashion-mnist", "convnet-bn") == "crop_noise"
    assert dc_strategy("fashion-mnist", "convnet") is None and dc_strategy("cifar10", "resnet18-bn") is None
    assert make_augment("dc", "fashion-mnist", "convnet") is None and isinstance(make_augment("dsa", "mnist", "mlp"), DSA)
    with pytest.raises(DistillsetError, match="unknown augmentation 'fancy'"):
        make_augment("fancy", "mnist", "convnet")
    with pytest.raises(DistillsetError, match="unknown DC augmentation"):
        DCAugment("crop_blur")


def test_dc_crop_shifts_and_pads_with_the_channel_mean():
    x = torch.rand(64, 1, 8, 8)
    out = DCAugment("crop")(x, torch.Generator().manual_seed(0))
    mean = float(x.mean())
    for original, shifted in zip(x, out):
        # every output is the input moved by (dy, dx) in [-4, 3], new pixels filled with the batch mean
        found = False
        for dy in range(-4, 4):
            for dx in range(-4, 4):
                expected = torch.full_like(original, mean)
                ys, xs = slice(max(0, -dy), min(8, 8 - dy)), slice(max(0, -dx), min(8, 8 - dx))
                src_y, src_x = slice(max(0, dy), min(8, 8 + dy)), slice(max(0, dx), min(8, 8 + dx))
                expected[:, ys, xs] = original[:, src_y, src_x]
                found |= torch.allclose(shifted, expected)
        assert found


def test_dc_scale_equals_the_reference_interpolate_and_centre_crop():
    torch.manual_seed(0)
    x = torch.rand(40, 1, 12, 12)
    generator = torch.Generator().manual_seed(2)
    out = DCAugment("scale")(x, generator)
    generator = torch.Generator().manual_seed(2)  # replay the draws: choice, offsets, then the factors
    torch.randint(1, (40,), generator=generator), torch.randint(8, (40, 2), generator=generator)
    factors = torch.rand(40, 2, generator=generator) * 0.4 + 0.8
    for i in range(40):  # the official code's scalefun, image by image
        h, w = int(factors[i, 0] * 12), int(factors[i, 1] * 12)
        tmp = torch.nn.functional.interpolate(x[i:i + 1], [h, w])[0]
        side = max(h, w, 12)
        canvas = torch.zeros(1, side, side)
        r, c = (side - h) // 2, (side - w) // 2
        canvas[:, r:r + h, c:c + w] = tmp
        r, c = (side - 12) // 2, (side - 12) // 2
        assert torch.equal(out[i], canvas[:, r:r + 12, c:c + 12])


def test_dc_rotation_keeps_the_centre_and_fills_corners_with_the_mean():
    x = torch.zeros(4, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    aug = DCAugment("rotate")
    out = aug._rotate(x, torch.tensor([0, 30, -45, 44]), fill=0.25)
    assert torch.allclose(out[0], x[0], atol=1e-5)  # 0 degrees: unchanged
    assert all(float(out[i, 0, 4, 4]) > 0.9 for i in range(4))  # the centre stays
    assert all(abs(float(out[i, 0, 0, 0]) - 0.25) < 0.05 for i in (1, 2, 3))  # rotated-in corners hold the fill
    # (up to the bicubic kernel's small overshoot at the image edge: measured 0.26-0.28)


def test_dc_augmentation_is_seeded_by_the_explicit_generator():
    x = torch.rand(32, 1, 8, 8)
    a = DCAugment()(x, torch.Generator().manual_seed(4))
    b = DCAugment()(x, torch.Generator().manual_seed(4))
    c = DCAugment()(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, c)


# ---------------------------------------------------------------------------------------------- evaluation defaults
def test_evaluate_uses_the_evaluation_the_method_declares(tmp_path, data_root, capsys):
    """Without flags a DSA set trains with DSA for 1000 epochs and a coreset of MNIST with the DC code's
    crop/scale/rotate (1000 epochs); the JSON output says so; flags override."""
    from distillset.cli import main

    assert main(["condense", "--method", "dsa", "--dataset", "digits", "--ipc", "1", "--iterations", "1", "--no-compile",
                 "--model", "convnet-d2-w32", "--out", str(tmp_path / "dsa"), "--no-progress"]) == 0
    assert main(["coreset", "--method", "random", "--dataset", "mnist", "--ipc", "1", "--data-root", str(data_root),
                 "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()

    def protocol(path, *flags):
        assert main(["evaluate", str(path / "synset.safetensors"), "--models", "mlp", "--runs", "1", "--json",
                     "--data-root", str(data_root), *flags]) == 0
        output = json.loads(capsys.readouterr().out)
        assert output["config"]["schedule"] == output["protocol"]["mlp"]["schedule"]  # what trained is what is said
        return output["protocol"]["mlp"]

    assert protocol(tmp_path / "dsa") == {"augment": "dsa", "epochs": 1000, "batch_size": 256, "soft_labels": True,
                                          "labels": "hard", "schedule": "reference"}
    assert protocol(tmp_path / "r") == {"augment": "dc:crop_scale_rotate", "epochs": 1000, "batch_size": 256, "soft_labels": True,
                                        "labels": "hard", "schedule": "reference"}
    assert protocol(tmp_path / "r", "--augment", "none", "--epochs", "3")["augment"] == "none"
    assert protocol(tmp_path / "dsa", "--epochs", "2") == {"augment": "dsa", "epochs": 2, "batch_size": 256, "soft_labels": True,
                                                           "labels": "hard", "schedule": "reference"}
    assert protocol(tmp_path / "dsa", "--epochs", "2", "--lr-schedule", "half")["schedule"] == "half"


def test_every_method_records_its_evaluation_in_its_sets(digits):
    real = ds.real_data(digits, "train")
    synset = ds.make_coreset("random", real, 1)
    assert synset.config["evaluation"] == {"augment": "dc", "epochs": None, "soft_labels": True, "batch_size": 256}
    dm = ds.condense_real("dm", real, 1, model="convnet-d2-w32", iterations=1)
    assert dm.config["evaluation"]["augment"] == "dsa"
    assert ds.get_method("mtt").evaluation.augment == "dsa" and ds.get_method("datm").evaluation.augment == "dsa"


# ---------------------------------------------------------------------------------------------- DD
def test_dd_follows_the_2018_schedule_and_softplus_step_sizes(digits):
    from distillset.methods.dataset_distillation import DatasetDistillation, DatasetDistillationConfig

    real = ds.real_data(digits, "train")  # 1437 images: 2 iterations of 1024 per pass
    engine = DatasetDistillation(real, DatasetDistillationConfig(ipc=1, model="convnet-d2-w32", steps=2, epochs=1))
    assert engine.iterations_per_pass == 2 and engine.total_steps == 400 * 2
    assert engine.learning_rate(0) == 0.01 and engine.learning_rate(79) == 0.01  # passes 0..39
    assert engine.learning_rate(80) == 0.005 and engine.learning_rate(160) == 0.0025  # halved every 40 passes
    state = engine.initial_state()
    torch.testing.assert_close(DatasetDistillation.step_sizes(state), torch.full((2,), 0.02))  # softplus(raw) = 0.02
    assert DatasetDistillationConfig().batch_real == 1024 and DatasetDistillationConfig().lr_img == 0.01
    engine.step(state)
    assert (DatasetDistillation.step_sizes(state) > 0).all()


# ---------------------------------------------------------------------------------------------- coresets
def test_dq_gradient_similarity_equals_the_cosine_of_explicit_gradient_embeddings():
    from distillset.methods.quantization import gradient_similarity

    torch.manual_seed(0)
    embeddings, labels = torch.randn(12, 5), torch.randint(0, 3, (12,))
    classifier = torch.nn.Linear(5, 3)
    rows = []
    for e, y in zip(embeddings, labels):  # autograd's last-layer gradient, [bias grad, weight grad]
        classifier.zero_grad()
        torch.nn.functional.cross_entropy(classifier(e[None]), y[None]).backward()
        rows.append(torch.cat([classifier.bias.grad.clone(), classifier.weight.grad.flatten()]))
    explicit = torch.nn.functional.normalize(torch.stack(rows).double(), dim=1)
    logits = classifier(embeddings).detach()
    torch.testing.assert_close(gradient_similarity(logits, labels, embeddings), explicit @ explicit.T)


def test_dq_defaults_to_gradient_embeddings_and_forgetting_to_a_full_schedule(digits, tmp_path):
    from distillset.methods.guidance import PoolConfig, train_pool

    assert ds.get_method("dq").make_config({"ipc": 1}).embedding == "gradient"
    assert ds.get_method("forgetting").make_config({"ipc": 1}).feature_epochs == 20
    real = ds.real_data(digits, "train")
    gradient = ds.make_coreset("dq", real, 3, feature_model="convnet-d2-w32", feature_epochs=1, bins=3)
    penultimate = ds.make_coreset("dq", real, 3, feature_model="convnet-d2-w32", feature_epochs=1, bins=3,
                                  embedding="penultimate")
    assert not torch.equal(gradient.images, penultimate.images)
    train_pool("digits", tmp_path / "pool", PoolConfig(models=["convnet-d2-w32"], seeds=[0], epochs=[1, 2]), log=lambda m: None)
    messages = []
    ds.make_coreset("dq", real, 2, bins=2, feature_pool=str(tmp_path / "pool"), log=messages.append)
    assert any("e2" in m for m in messages), messages  # the most-trained member (epoch 2), not a test-accuracy pick


# ---------------------------------------------------------------------------------------------- DATM
def test_gsam_direction_on_a_known_quadratic():
    """L(w) = 1/2 w^T A w: g = A w, e = rho s g / ||sqrt(s) g||, g_p = A (w + e), d = g_p - alpha (g - proj_{g_p} g)."""
    from distillset.methods.gsam import gsam_direction

    torch.manual_seed(0)
    m = torch.randn(6, 6, dtype=torch.float64)
    a = m @ m.T + torch.eye(6, dtype=torch.float64)

    def gradient(w):
        return w @ a, 0.5 * ((w @ a) * w).sum(-1)

    w = torch.randn(3, 6, dtype=torch.float64)  # three independent parameter vectors
    for adaptive in (False, True):
        d, loss = gsam_direction(gradient, w, rho=0.05, alpha=0.3, adaptive=adaptive)
        for row in range(3):
            x = w[row]
            g = a @ x
            s = x * x if adaptive else torch.ones_like(x)
            e = 0.05 * s * g / torch.linalg.norm((x.abs() if adaptive else 1) * g)
            g_p = a @ (x + e)
            expected = g_p - 0.3 * (g - (g @ g_p) / (g_p @ g_p) * g_p)
            torch.testing.assert_close(d[row], expected)
            torch.testing.assert_close(loss[row], 0.5 * x @ a @ x)
    plain, _ = gsam_direction(gradient, w, rho=0.0, alpha=0.3)  # no perturbation: g_p = g, no orthogonal part
    torch.testing.assert_close(plain, w @ a)
    # descending along d reaches the minimum of the quadratic, up to the perturbation radius (SAM's fixed rho)
    x = torch.randn(1, 6, dtype=torch.float64)
    for _ in range(500):
        step, _ = gsam_direction(gradient, x, rho=0.01, alpha=0.3, adaptive=False)
        x = x - 0.5 / float(torch.linalg.eigvalsh(a).max()) * step
    assert float(x.norm()) < 2 * 0.01  # measured 0.0033, from ~2.4


def test_gsam_experts_are_recorded_and_differ_from_sgd(tmp_path):
    from distillset.methods.experts import ExpertConfig, train_experts

    quiet = {"log": lambda m: None}
    sgd = train_experts("digits", tmp_path / "sgd", ExpertConfig(model="convnet-d2-w32", experts=1, epochs=1, lr=0.1), **quiet)
    gsam = train_experts("digits", tmp_path / "gsam", ExpertConfig(model="convnet-d2-w32", experts=1, epochs=1, lr=0.1,
                                                                      optimizer="gsam"), **quiet)
    assert gsam["config"]["optimizer"] == "gsam" and gsam["config"]["rho"] == 0.01 and gsam["config"]["alpha"] == 0.3
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "sgd" / "expert_0000.safetensors"))["trajectory"]
    b = load_file(str(tmp_path / "gsam" / "expert_0000.safetensors"))["trajectory"]
    assert torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])  # same start, another path
    with pytest.raises(DistillsetError, match="unknown expert optimizer"):
        train_experts("digits", tmp_path / "x", ExpertConfig(optimizer="adam"), **quiet)


def test_datm_takes_its_published_setting_and_labels_from_final_epoch_experts(tmp_path, digits):
    from distillset.methods.experts import ExpertConfig, train_experts
    from distillset.methods.trajectory_matching import DATMConfig, TrajectoryMatching

    spec = ds.get_method("datm")
    assert spec.evaluation.batch_size == 128 and spec.evaluation.augment == "dsa"
    options, note = ds.driver.with_presets(spec, "mnist", {"ipc": 10, "syn_steps": 5})
    messages = [note]
    assert options["current_max_start_epoch"] == 10 and options["expansion_end"] == 1000 and options["max_start_epoch"] == 20
    assert options["syn_steps"] == 5 and options["lr_label"] == 2.0  # the user's option wins over the preset
    assert "published setting for mnist ipc 10" in messages[0] and "given options win: syn_steps" in messages[0]
    assert ds.driver.with_presets(spec, "cifar10", {"ipc": 1})[0]["current_max_start_epoch"] == -1  # a fixed window

    experts = tmp_path / "experts"
    train_experts("digits", experts, ExpertConfig(model="convnet-d2-w32", experts=3, epochs=3, lr=0.1), log=lambda m: None)
    config = DATMConfig(ipc=2, model="convnet-d2-w32", experts_dir=str(experts), syn_steps=2, expert_epochs=1,
                        max_start_epoch=2, current_max_start_epoch=1, expansion_end=10, min_start_epoch=0)
    engine = TrajectoryMatching(ds.real_data(digits, "train"), config)
    assert engine.start_window(0) == (0, 1) and engine.start_window(10) == (0, 2)  # DATM's window grows to max
    assert any("GSAM" in w for w in engine.pop_warnings())  # SGD experts are not DATM's
    state = engine.initial_state()
    logits = torch.stack([engine.expert_logits(i, state.images) for i in range(3)])
    final = engine.buffer.trajectory(0)[-1]
    torch.testing.assert_close(logits[0], engine.student(final, state.images))  # label_epoch -1: the final epoch
    correct = logits.argmax(2) == state.labels[None]
    for n in range(len(state.images)):
        chosen = logits[correct[:, n], n] if correct[:, n].any() else logits[:, n]
        torch.testing.assert_close(state.extras["soft_labels"][n], chosen.mean(0))


def test_mtt_cycles_through_a_shuffled_expert_buffer(tmp_path, digits):
    from distillset.methods.experts import ExpertConfig, train_experts
    from distillset.methods.trajectory_matching import TrajectoryMatching, TrajectoryMatchingConfig

    experts = tmp_path / "experts"
    train_experts("digits", experts, ExpertConfig(model="convnet-d2-w32", experts=4, epochs=2), log=lambda m: None)
    engine = TrajectoryMatching(ds.real_data(digits, "train"), TrajectoryMatchingConfig(
        ipc=1, model="convnet-d2-w32", experts_dir=str(experts), max_start_epoch=1, expert_epochs=1))
    drawn = [engine.expert_for(k) for k in range(12)]
    for p in range(3):  # every pass uses every expert once, in its own shuffled order
        assert sorted(drawn[4 * p:4 * p + 4]) == [0, 1, 2, 3]
    assert len({tuple(drawn[4 * p:4 * p + 4]) for p in range(3)}) > 1
    assert ExpertConfig().experts == 100 and ExpertConfig().epochs == 50  # MTT's buffer
    assert ds.driver.with_presets(ds.get_method("mtt"), "cifar100", {"ipc": 1})[0]["syn_steps"] == 20


def test_mtt_presets_cover_the_published_table_and_say_when_the_experts_do_not_fit(tmp_path, digits):
    from distillset.methods.experts import ExpertConfig, train_experts
    from distillset.methods.trajectory_matching import TrajectoryMatching, TrajectoryMatchingConfig
    from distillset.presets import preset_ipcs

    spec = ds.get_method("mtt")
    for dataset in ("cifar10", "cifar100", "tinyimagenet"):
        assert preset_ipcs("mtt", dataset) == [1, 10, 50]
    cifar10_1 = ds.driver.with_presets(spec, "cifar10", {"ipc": 1})[0]
    assert (cifar10_1["syn_steps"], cifar10_1["max_start_epoch"], cifar10_1["lr_lr"], cifar10_1["zca"]) == (50, 2, 1e-7, True)
    assert ds.driver.with_presets(spec, "cifar100", {"ipc": 50})[0]["batch_syn"] == 125
    options, note = ds.driver.with_presets(spec, "fashion-mnist", {"ipc": 1})
    assert "no published setting for fashion-mnist" in note and "zca" not in options
    for dataset, ipc in (("cifar10", 50), ("cifar100", 10), ("tinyimagenet", 10)):  # each row builds a valid config
        spec.make_config(ds.driver.with_presets(spec, dataset, {"ipc": ipc})[0], None)

    experts = tmp_path / "experts"  # plain (not whitened) experts under a setting published with ZCA
    train_experts("digits", experts, ExpertConfig(model="convnet-d2-w32", experts=1, epochs=2), log=lambda m: None)
    base = dict(ipc=1, model="convnet-d2-w32", experts_dir=str(experts), max_start_epoch=1, expert_epochs=1)
    warned = TrajectoryMatching(ds.real_data(digits, "train"), TrajectoryMatchingConfig(**base, zca=True)).pop_warnings()
    assert any("published with ZCA-whitened experts" in w for w in warned)
    for zca in (False, None):
        quiet = TrajectoryMatching(ds.real_data(digits, "train"), TrajectoryMatchingConfig(**base, zca=zca)).pop_warnings()
        assert not any("ZCA" in w for w in quiet)
