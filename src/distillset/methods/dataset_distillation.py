"""The original Dataset Distillation (DD; Wang, Zhu, Torralba & Efros, 2018), the DC paper's main learned baseline.

Bi-level: each iteration draws a FRESH randomly initialised network (DD's "random initialisation"
setting), trains it for ``steps`` x ``epochs`` SGD steps on the synthetic set, every step with its own
learned step size, and scores the trained network by its cross-entropy on a class-balanced real batch.
That loss is backpropagated through the unrolled training (the machinery MTT and DATM use, see
:mod:`.unroll`) to the images and the step sizes.

As the 2018 code: the step sizes are learned through a softplus (lr_t = softplus(r_t), r initialised to
softplus^-1(0.02)), so they stay positive without clamping; images and r share one Adam (lr 0.01, betas
0.5, 0.999); the schedule runs ``real_epochs`` (400) passes over the real training set at ``batch_real``
(1024) real images per iteration, so ``iterations`` defaults to 400 x ceil(N / 1024) (23,600 on MNIST), and
the Adam lr is halved every ``decay_epochs`` (40) of those passes.

Which images each unrolled step trains on (``step_images``): "fixed" is the 2018 code's plan, where the
``ipc`` images of a class are split into ``steps`` groups and step s always trains on group s of every class
(10 steps of one image per class at ipc 10, its MNIST default), so each image is distilled for its own step
sizes; "shuffled" walks through the images in shuffled minibatches of ``batch_syn`` (all by default), as MTT's
unroll does. Fresh networks (``network_init``) are PyTorch's default or Xavier-normal with zero biases, the
2018 code's default. The published setting (``presets/dd.yaml``) is the 2018 code's: MNIST ipc 10 on LeNet,
fixed steps, Xavier networks; elsewhere the defaults are ConvNet, shuffled, PyTorch's initialisation.

A DD set is meant to be used as it was distilled: :mod:`distillset.evaluation.learned_schedule` trains fresh
networks from the same initialisation with the learned step sizes, step by step (the 2018 evaluation, and the
protocol of DD's published numbers); the standard evaluator (hundreds of epochs at lr 0.01) is the DC paper's
comparison of the images alone. The learned step sizes are kept in the set's config.

Differences from the 2018 code, stated because they change numbers: the real batch is class-balanced and
drawn afresh every iteration (the 2018 code walks through shuffled epochs of 1024 images); the lr halves after
passes 40, 80, ... where the 2018 code, which steps its scheduler at the start of every pass including the first,
halves it one pass earlier (39, 79, ...). Each iteration trains one fresh network, the 2018 default (``n_nets`` 1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from ..augment import DSA, strategy_for
from ..data.real import RealData
from ..errors import DistillsetError
from ..models import build_model
from ..seeding import make_generator
from ..synset import SynSet
from .contract import check_config, option
from .image_state import MatchingState, SyntheticImageMethod, adam
from .registry import register_method
from .unroll import FlatStudent, Unroller, draw_steps, fixed_steps

BETAS = (0.5, 0.999)


@dataclass
class DatasetDistillationConfig:
    ipc: int = option(10, "images per class", low=1)
    model: str = option("convnet", "the network trained in the inner loop (any zoo model)")
    iterations: int | None = option(None, "outer iterations (default: real_epochs x ceil(N / batch_real), the 2018 schedule)",
                                    low=1)
    steps: int = option(10, "unrolled SGD steps per epoch, each with its own learned step size", low=1)
    epochs: int = option(3, "passes of the unrolled steps", low=1)
    step_images: str = option("shuffled", "which images each step trains on: 'fixed' (the 2018 code's: step s always "
                              "the s-th ipc/steps images of every class) or 'shuffled' minibatches of batch_syn",
                              choices=("shuffled", "fixed"))
    batch_syn: int = option(0, "synthetic images per unrolled step with shuffled steps (0: all)", low=0)
    network_init: str = option("default", "the fresh networks' initialisation: PyTorch's 'default' or 'xavier' (the "
                               "2018 code's: Xavier-normal weights, zero biases)", choices=("default", "xavier"))
    batch_real: int = option(1024, "real images (class-balanced) scoring the trained network", low=1)
    real_epochs: int = option(400, "passes over the real training set that the default iterations make", low=1)
    decay_epochs: int = option(40, "the Adam lr is multiplied by decay_factor every this many passes", low=1)
    decay_factor: float = option(0.5, "the lr's factor at each decay", low=0, low_open=True, high=1)
    init_lr: float = option(0.02, "every step size's initial value", low=0, low_open=True)
    lr_img: float = option(0.01, "Adam learning rate of the images and of the raw step sizes", low=0, low_open=True)
    dsa: bool = option(False, "augment the unrolled steps with DSA")
    dsa_strategy: str | None = option(None, "DSA transforms (default: per dataset)")
    init: str = option("noise", "initial images", choices=("noise", "real"))
    memory: str = option("plain", "'checkpointed' recomputes each unrolled step (memory independent of steps)",
                         choices=("plain", "checkpointed"))
    seed: int = option(0, "the seed of every random draw")


@register_method("dd", kind="condensation", modality="image", config=DatasetDistillationConfig,
                 tiny={"iterations": 2, "steps": 2, "epochs": 1, "batch_real": 20, "decay_epochs": 1},
                 summary="the original bi-level dataset distillation through unrolled training (Wang et al., 2018)",
                 presets="dd")
class DatasetDistillation(SyntheticImageMethod):
    method = "dd"

    def __init__(self, real: RealData, config: DatasetDistillationConfig) -> None:
        config = check_config(replace(config))
        real.check_ipc(config.ipc)
        self.real, self.config = real, config
        self.check_dsa_options()
        if config.step_images == "fixed" and config.ipc % config.steps:
            raise DistillsetError(f"fixed steps split each class's {config.ipc} images into {config.steps} steps; give an "
                                  f"ipc that is a multiple of steps, or step_images shuffled")
        if config.step_images == "fixed" and config.batch_syn:
            raise DistillsetError("batch_syn sizes shuffled steps; fixed steps train on ipc/steps images of every class "
                                  "each: drop batch_syn, or set step_images shuffled")
        self.dsa = DSA(config.dsa_strategy or strategy_for(real.name)) if config.dsa else None
        build_model(config.model, real.shape, real.num_classes)  # fail now on a model the data cannot feed

    @property
    def iterations_per_pass(self) -> int:
        """Iterations that make one pass over the real training set at ``batch_real`` images each."""
        return max(1, -(-self.real.labels.numel() // self.config.batch_real))

    @property
    def total_steps(self) -> int:
        cfg = self.config
        return cfg.iterations if cfg.iterations is not None else cfg.real_epochs * self.iterations_per_pass

    def learning_rate(self, iteration: int) -> float:
        """The Adam lr at ``iteration``: StepLR over passes of the real data, as the 2018 code steps it per epoch."""
        cfg = self.config
        return cfg.lr_img * cfg.decay_factor ** ((iteration // self.iterations_per_pass) // cfg.decay_epochs)

    def initial_state(self) -> MatchingState:
        state = super().initial_state()
        raw = torch.tensor(self.config.init_lr, dtype=torch.float32).expm1().log()  # softplus^-1
        state.extras["raw_lrs"] = raw.repeat(self.config.steps * self.config.epochs).to(self.real.device)
        return state

    @staticmethod
    def step_sizes(state: MatchingState) -> torch.Tensor:
        return F.softplus(state.extras["raw_lrs"])

    def step(self, state: MatchingState) -> float:
        cfg, real = self.config, self.real
        it = state.iteration
        generator = make_generator(cfg.seed, self.method, "iteration", it)
        net = build_model(cfg.model, real.shape, real.num_classes, make_generator(cfg.seed, self.method, "network", it), real.device,
                          init=cfg.network_init)
        student = FlatStudent(net)
        start = FlatStudent.flatten(net)
        size = tuple(real.shape[1:])
        steps = (fixed_steps(state.labels, cfg.steps, cfg.epochs, generator, self.dsa, size)
                 if cfg.step_images == "fixed" else
                 draw_steps(state.images.shape[0], cfg.steps * cfg.epochs, cfg.batch_syn, generator, self.dsa, size, real.device))
        idx, y_real = real.sample_balanced(max(1, min(cfg.batch_real // real.num_classes, min(map(len, real.class_indices)))),
                                           generator)
        x_real = real.images[idx]
        images = state.images.detach().requires_grad_(True)
        raw = state.extras["raw_lrs"].detach()
        lrs = F.softplus(raw).requires_grad_(True)
        loss, (grad_images, grad_lrs) = Unroller(student, self.dsa).run(
            start, images, state.labels, lrs, steps, lambda theta: F.cross_entropy(student(theta, x_real), y_real),
            [images, lrs], checkpointed=cfg.memory == "checkpointed")
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the DD loss became {loss.item()} at iteration {it + 1}")
        lr = self.learning_rate(it)
        state.images = adam(state.images, grad_images, lr, state.extras, "images", BETAS)
        # d loss / d raw = d loss / d lr * softplus'(raw) = d loss / d lr * sigmoid(raw)
        state.extras["raw_lrs"] = adam(raw, grad_lrs * torch.sigmoid(raw), lr, state.extras, "raw_lrs", BETAS)
        state.iteration += 1
        state.losses.append(float(loss))
        return float(loss)

    def to_synset(self, state: MatchingState, extra_config: dict | None = None) -> SynSet:
        return super().to_synset(state, {**(extra_config or {}), "learned_step_sizes": self.step_sizes(state).cpu().tolist()})
