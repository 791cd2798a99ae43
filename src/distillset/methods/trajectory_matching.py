"""Trajectory matching: MTT (Cazenavette et al., CVPR 2022) and DATM (Guo et al., ICLR 2024).

Each iteration picks an expert and a start epoch t, starts a student at the expert's parameters
theta*_t, takes ``syn_steps`` SGD steps on synthetic minibatches with a LEARNED step size, and
minimises ||theta_S - theta*_{t+M}||^2 / ||theta*_t - theta*_{t+M}||^2 (M = ``expert_epochs``) with respect
to the images and the step size (and, for DATM, the soft labels), differentiating through the unroll
(:mod:`.unroll`; ``memory="checkpointed"`` keeps one step's activations whatever ``syn_steps`` is).

DATM adds, over MTT:
* a start-epoch window [min_start_epoch, upper) whose upper end grows linearly from
  ``current_max_start_epoch`` to ``max_start_epoch`` over ``expansion_end`` iterations: small sets match
  early (easy) parts of the trajectories, larger ones later (harder) parts;
* initial images that the experts classify correctly, and soft labels initialised from the experts'
  averaged logits on them and learned alongside the images;
* a gate that skips the update of an iteration whose matching loss exceeds ``threshold``.

The learned step size is kept within [lr_min, lr_max]; when it leaves that range it is clamped and
a warning is logged (a negative or exploding step size means the image lr is too high).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import torch

from ..device import to_device
from ..augment import DSA, strategy_for
from ..data.real import RealData
from ..distributed import context
from ..errors import DistillsetError
from ..models import build_model
from ..seeding import make_generator
from ..synset import SynSet
from .experts import ExpertBuffer
from .contract import EvaluationSpec, check_config, option
from .image_state import MatchingState, SyntheticImageMethod, sgd_momentum
from .registry import register_method
from .unroll import FlatStudent, Unroller, draw_steps


@dataclass
class TrajectoryMatchingConfig:
    """MTT's options (DATM's defaults differ: :class:`DATMConfig`)."""

    METHOD: ClassVar[str] = "mtt"

    ipc: int = option(10, "images per class", low=1)
    model: str = option("convnet", "the student network; the experts' model")
    iterations: int = option(5000, "iterations", low=1)
    experts_dir: str = option("", "the expert trajectories (made by `distillset experts`)")
    syn_steps: int = option(20, "student steps per iteration", low=1)
    expert_epochs: int = option(2, "expert epochs matched", low=1)
    max_start_epoch: int = option(10, "start epochs are drawn below this", low=1)
    min_start_epoch: int = option(0, "DATM's window: the lowest start epoch (MTT: 0)", low=0)
    current_max_start_epoch: int = option(-1, "DATM: the window's initial upper end (-1: max_start_epoch, a fixed window)", low=-1)
    expansion_end: int = option(0, "DATM: iterations over which the window grows (0: fixed)", low=0)
    batch_syn: int = option(0, "synthetic images per student step (0: all)", low=0)
    lr_img: float = option(100.0, "image learning rate", low=0, low_open=True)
    momentum_img: float = option(0.5, "image SGD momentum", low=0, high=1)
    lr_teacher: float = option(0.01, "the learned step size's initial value (the experts' lr)", low=0, low_open=True)
    lr_lr: float = option(1e-5, "learning rate of the step size", low=0)
    momentum_lr: float = option(0.5, "momentum of the step size", low=0, high=1)
    lr_min: float = option(1e-5, "the step size is clamped into [lr_min, lr_max]", low=0)
    lr_max: float = option(1.0, "the step size is clamped into [lr_min, lr_max]", low=0, low_open=True)
    soft_labels: bool = option(False, "learn soft labels initialised from the experts' logits")
    lr_label: float = option(5.0, "learning rate of the soft labels", low=0)
    momentum_label: float = option(0.9, "momentum of the soft labels", low=0, high=1)
    label_init_experts: int = option(0, "experts whose logits make the initial soft labels (0: all, as DATM)", low=0)
    label_epoch: int = option(-1, "the expert epoch that labels and judges initial images (-1: the final one, as DATM)")
    threshold: float = option(0.0, "DATM's gate: skip the update when the matching loss is above this (0: never)", low=0)
    dsa: bool = option(True, "augment the student steps with DSA")
    dsa_strategy: str | None = option(None, "DSA transforms (default: per dataset)")
    init: str = option("real", "initial images: random real ones, ones the experts classify correctly, or noise",
                       choices=("noise", "real", "correct"))
    memory: str = option("plain", "'checkpointed' recomputes each unrolled step (memory independent of syn_steps)",
                         choices=("plain", "checkpointed"))
    trajectories: int = option(1, "(expert, start epoch) draws per iteration, averaged; split across torchrun ranks", low=1)
    zca: bool | None = option(None, "whether the setting expects ZCA-whitened experts (the presets state the paper's; "
                                    "None: no expectation); a mismatch is reported, since lr_img does not transfer across it")
    seed: int = option(0, "the seed of every random draw")


@dataclass
class DATMConfig(TrajectoryMatchingConfig):
    """DATM's defaults over MTT's: learned soft labels, correctly classified initial images, the loss gate."""

    METHOD: ClassVar[str] = "datm"

    soft_labels: bool = option(True, "learn soft labels initialised from the experts' logits")
    threshold: float = option(1.0, "DATM's gate: skip the update when the matching loss is above this (0: never)", low=0)
    init: str = option("correct", "initial images: random real ones, ones the experts classify correctly, or noise",
                       choices=("noise", "real", "correct"))


TINY = {"iterations": 2, "syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 2}


@register_method("mtt", kind="condensation", modality="image", config=TrajectoryMatchingConfig,
                 evaluation=EvaluationSpec(augment="dsa"), tiny=TINY, requires=("experts",), presets="mtt",
                 summary="matching training trajectories of experts trained on the real data (Cazenavette et al., CVPR 2022)")
@register_method("datm", kind="condensation", modality="image", config=DATMConfig,
                 evaluation=EvaluationSpec(augment="dsa", batch_size=128), tiny=TINY, requires=("experts",), presets="datm",
                 summary="difficulty-aligned trajectory matching with learned soft labels (Guo et al., ICLR 2024)")
class TrajectoryMatching(SyntheticImageMethod):
    """MTT or DATM (by the config's class) as a step function over a :class:`MatchingState`."""

    def __init__(self, real: RealData, config: TrajectoryMatchingConfig, dataset: str | None = None) -> None:
        cfg = check_config(replace(config))
        method = self.method = cfg.METHOD
        if not cfg.experts_dir:
            raise DistillsetError(f"--method {method} needs --experts-dir DIR (make one with `distillset experts`)")
        real.check_ipc(cfg.ipc)
        self.buffer = ExpertBuffer(cfg.experts_dir, dataset or real.name, cfg.model, real.shape, real.num_classes)
        epochs = self.buffer.epochs
        if cfg.max_start_epoch < 1 or cfg.expert_epochs < 1 or cfg.syn_steps < 1 or cfg.trajectories < 1:
            raise DistillsetError("max_start_epoch, expert_epochs, syn_steps and trajectories must be at least 1")
        if cfg.max_start_epoch - 1 + cfg.expert_epochs > epochs:
            raise DistillsetError(f"max_start_epoch {cfg.max_start_epoch} with expert_epochs {cfg.expert_epochs} needs experts "
                                  f"of at least {cfg.max_start_epoch - 1 + cfg.expert_epochs} epochs, but {cfg.experts_dir} has "
                                  f"{epochs}; lower --max-start-epoch or train longer experts")
        if not 0 <= cfg.min_start_epoch < cfg.max_start_epoch:
            raise DistillsetError(f"min_start_epoch {cfg.min_start_epoch} must be in [0, max_start_epoch {cfg.max_start_epoch})")
        if self.buffer.zca is not None and real.zca is None:
            zca = self.buffer.zca.to(real.device)
            if self.buffer.zca_input == "pixels":
                real = real.apply_zca(zca)
            else:  # an expert folder made before 2026-12-03: its transform was fitted on normalised images
                real = replace(real, images=zca(real.images), zca=zca)
        self.real, self.config = real, cfg
        self.check_dsa_options()
        self.dsa = DSA(cfg.dsa_strategy or strategy_for(real.name)) if cfg.dsa else None
        net = build_model(cfg.model, real.shape, real.num_classes, device=real.device)  # BN statistics on the data's device
        self.student = FlatStudent(net)
        if self.student.num_params != self.buffer.num_params:
            raise DistillsetError(f"the experts have {self.buffer.num_params} parameters but '{cfg.model}' has {self.student.num_params}")
        self.unroller = Unroller(self.student, self.dsa)
        self.warnings: list[str] = []
        if not -(epochs + 1) <= cfg.label_epoch <= epochs:
            raise DistillsetError(f"label_epoch {cfg.label_epoch} is not an epoch of experts with {epochs} epochs")
        if cfg.zca is not None and cfg.zca != (self.buffer.zca is not None):
            self.warnings.append(f"this setting was published with{'' if cfg.zca else 'out'} ZCA-whitened experts, but "
                                 f"{cfg.experts_dir} was trained with{'' if self.buffer.zca is not None else 'out'} ZCA "
                                 f"(`distillset experts{' --zca' if cfg.zca else ''}`); its lr_img may not transfer")
        if method == "datm" and self.buffer.index["config"].get("optimizer", "sgd") != "gsam":
            self.warnings.append(f"DATM's published experts are flat GSAM experts (`distillset experts --optimizer gsam "
                                 f"--epochs 100`); {cfg.experts_dir} was trained with plain SGD")

    # ------------------------------------------------------------------------------------ init
    def label_experts(self) -> list[int]:
        """The experts that judge and label initial images: the first ``label_init_experts`` (0: all, DATM's)."""
        count = len(self.buffer) if self.config.label_init_experts == 0 else min(self.config.label_init_experts, len(self.buffer))
        return list(range(count))

    def expert_logits(self, expert: int, images: torch.Tensor) -> torch.Tensor:
        """Logits of ``expert`` at ``label_epoch`` (DATM's Label_Model_Timestamp: -1 = the final epoch)."""
        theta = self.buffer.trajectory(expert)[self.config.label_epoch].to(self.real.device)
        with torch.no_grad():
            return torch.cat([self.student(theta, images[s:s + 1024]) for s in range(0, images.shape[0], 1024)])

    def initial_soft_labels(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """DATM's soft labels: per image, the logits averaged over the label experts that classify it correctly
        (over all of them for an image none gets right, where DATM's code would divide by zero)."""
        logits = torch.stack([self.expert_logits(i, images) for i in self.label_experts()])  # [E, N, K]
        correct = (logits.argmax(2) == labels[None]).to(logits.dtype)  # [E, N]
        counts = correct.sum(0)
        weights = torch.where(counts[None] > 0, correct / counts.clamp_min(1)[None], torch.full_like(correct, 1 / len(logits)))
        return (logits * weights[..., None]).sum(0)

    def initial_state(self) -> MatchingState:
        cfg, real = self.config, self.real
        if cfg.init == "correct":
            generator = make_generator(cfg.seed, self.method, "init")
            chosen = []
            for c in range(real.num_classes):
                pool = real.sample_indices(c, max(8 * cfg.ipc, 256), generator)  # a shuffled candidate pool of class c
                predicted = self.expert_logits(0, real.images[pool]).argmax(1)  # DATM: the first expert judges
                correct, wrong = pool[predicted == c], pool[predicted != c]
                chosen.append(torch.cat([correct, wrong])[:cfg.ipc])  # wrong ones only when too few are right
            idx = torch.cat(chosen)
            state = MatchingState(real.images[idx].clone(), real.labels[idx].clone(), None)
        else:
            state = super().initial_state()
        state.extras["lr"] = torch.tensor(cfg.lr_teacher, device=real.device)
        if cfg.soft_labels:
            state.extras["soft_labels"] = self.initial_soft_labels(state.images, state.labels).detach()
        return state

    # ------------------------------------------------------------------------------------ step
    def expert_for(self, draw: int) -> int:
        """The expert of the ``draw``-th trajectory of the run: MTT cycles through its buffer in a shuffled order,
        reshuffled after every pass, so every expert is used once per pass (the pass's order derives from the
        seed and the pass number, so a resumed run draws the same experts)."""
        count = len(self.buffer)
        passed, position = divmod(draw, count)
        order = torch.randperm(count, generator=make_generator(self.config.seed, self.method, "expert-order", passed))
        return int(order[position])

    def start_window(self, iteration: int) -> tuple[int, int]:
        """[low, high) of the start epoch at this iteration (DATM's growing window; MTT's fixed one)."""
        cfg = self.config
        high = cfg.max_start_epoch
        if cfg.current_max_start_epoch >= 0 and cfg.expansion_end > 0:
            grown = cfg.current_max_start_epoch + (cfg.max_start_epoch - cfg.current_max_start_epoch) * iteration / cfg.expansion_end
            high = min(cfg.max_start_epoch, max(cfg.min_start_epoch + 1, int(grown)))
        elif cfg.current_max_start_epoch >= 0:
            high = max(cfg.min_start_epoch + 1, cfg.current_max_start_epoch)
        return cfg.min_start_epoch, high

    def step(self, state: MatchingState) -> float:
        """One iteration over ``trajectories`` (expert, start epoch) draws: the mean matching loss and its gradients.
        Under torchrun the draws are split across ranks and the gradients summed, so any world size gives
        the single-process result (up to reduction order)."""
        cfg, real = self.config, self.real
        it = state.iteration
        generator = make_generator(cfg.seed, self.method, "iteration", it)
        low, high = self.start_window(it)
        draws = []
        for t in range(cfg.trajectories):  # every rank draws all of them: the streams do not depend on the ranks
            expert = self.expert_for(it * cfg.trajectories + t)
            start_epoch = int(torch.randint(low, high, (1,), generator=generator))
            steps = draw_steps(state.images.shape[0], cfg.syn_steps, cfg.batch_syn, generator, self.dsa,
                               tuple(real.shape[1:]), real.device)
            draws.append((expert, start_epoch, steps))
        images = state.images.detach().requires_grad_(True)
        lr = state.extras["lr"].detach().requires_grad_(True)
        soft = state.extras.get("soft_labels")
        targets = soft.detach().requires_grad_(True) if soft is not None else state.labels
        wrt = [images, lr] + ([targets] if soft is not None else [])
        total_loss = torch.zeros((), device=real.device)
        total_grads = [torch.zeros_like(t) for t in wrt]
        ctx = context()
        for expert, start_epoch, steps in (draws[t] for t in ctx.mine(range(cfg.trajectories))):
            trajectory = self.buffer.trajectory(expert)
            start = to_device(trajectory[start_epoch], real.device)
            target = to_device(trajectory[start_epoch + cfg.expert_epochs], real.device)
            scale = ((start - target) ** 2).sum()
            loss, grads = self.unroller.run(start, images, targets, lr, steps,
                                            lambda theta, target=target, scale=scale: ((theta - target) ** 2).sum() / scale,
                                            wrt, checkpointed=cfg.memory == "checkpointed")
            total_loss += loss
            for total, grad in zip(total_grads, grads):
                if grad is not None:
                    total += grad
        for tensor in [total_loss, *total_grads]:
            ctx.all_reduce_sum(tensor)
            tensor /= cfg.trajectories
        if not torch.isfinite(total_loss):
            raise FloatingPointError(f"the trajectory-matching loss became {total_loss.item()} at iteration {it + 1}")
        value = float(total_loss)
        if cfg.threshold > 0 and value > cfg.threshold:
            state.extras["skipped"] = state.extras.get("skipped", torch.zeros((), device=real.device)) + 1
        else:
            self._update(state, total_grads)
        state.iteration += 1
        state.losses.append(value)
        return value

    def _update(self, state: MatchingState, grads: list[torch.Tensor | None]) -> None:
        cfg, extras = self.config, state.extras
        zero = torch.zeros_like
        state.images, state.momentum = sgd_momentum(state.images, grads[0] if grads[0] is not None else zero(state.images),
                                                    cfg.lr_img, cfg.momentum_img, state.momentum)
        lr, extras["lr_momentum"] = sgd_momentum(extras["lr"], grads[1] if grads[1] is not None else zero(extras["lr"]),
                                                 cfg.lr_lr, cfg.momentum_lr, extras.get("lr_momentum"))
        if not bool(torch.isfinite(lr)) or float(lr) < cfg.lr_min or float(lr) > cfg.lr_max:
            clamped = torch.nan_to_num(lr, nan=cfg.lr_teacher).clamp(cfg.lr_min, cfg.lr_max)
            self.warnings.append(f"the learned step size left [{cfg.lr_min:g}, {cfg.lr_max:g}] ({float(lr):.3g}) at iteration "
                                 f"{state.iteration + 1}; clamped to {float(clamped):.3g} (lower --lr-lr if this repeats)")
            lr, extras["lr_momentum"] = clamped, torch.zeros_like(lr)
        extras["lr"] = lr
        if "soft_labels" in extras and len(grads) > 2 and grads[2] is not None:
            extras["soft_labels"], extras["label_momentum"] = sgd_momentum(
                extras["soft_labels"], grads[2], cfg.lr_label, cfg.momentum_label, extras.get("label_momentum"))

    def pop_warnings(self) -> list[str]:
        out, self.warnings = self.warnings, []
        return out

    def to_synset(self, state: MatchingState, extra_config: dict | None = None) -> SynSet:
        synset = super().to_synset(state, extra_config)
        synset.lr = state.extras["lr"].detach().cpu().reshape(()).clone()
        if "soft_labels" in state.extras:
            synset.soft_labels = state.extras["soft_labels"].detach().cpu().clone()
        synset.config = {**synset.config, "skipped_updates": int(state.extras.get("skipped", torch.zeros(())).item())}
        return synset


__all__ = ["DATMConfig", "TrajectoryMatching", "TrajectoryMatchingConfig"]
