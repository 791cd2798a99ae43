"""What every method that learns synthetic images shares: the state it resumes from, its initial
images, the image optimiser carried across iterations, and the conversion to a SynSet."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from ..data.real import RealData
from ..errors import DistillsetError
from ..seeding import make_generator
from ..synset import SynSet


@dataclass
class MatchingState:
    """Everything a resumed run needs: the images, the optimiser's momentum, the next iteration."""

    images: torch.Tensor
    labels: torch.Tensor
    momentum: torch.Tensor | None
    iteration: int = 0
    losses: list[float] = field(default_factory=list)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # other learned tensors and their momenta

    def named_tensors(self) -> dict[str, torch.Tensor]:
        """The checkpoint's tensors: images, labels, momentum (once there is one), ``extra.NAME``."""
        tensors = {"images": self.images.detach(), "labels": self.labels}
        if self.momentum is not None:
            tensors["momentum"] = self.momentum.detach()
        tensors.update({f"extra.{name}": value.detach() for name, value in self.extras.items()})
        return tensors

    @classmethod
    def from_named_tensors(cls, tensors: dict[str, torch.Tensor], iteration: int, losses: list[float],
                           device: torch.device) -> "MatchingState":
        momentum = tensors.get("momentum")
        extras = {name[len("extra."):]: value.to(device) for name, value in tensors.items() if name.startswith("extra.")}
        return cls(tensors["images"].to(device), tensors["labels"].to(device), momentum.to(device) if momentum is not None else None,
                   int(iteration), list(losses), extras)


def sgd_momentum(value: torch.Tensor, grad: torch.Tensor, lr: float, momentum: float,
                 buffer: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of torch.optim.SGD's momentum rule (the first buffer is the gradient itself), out of place,
    so the updated value and its buffer can live in a resumable state."""
    buffer = grad.clone() if buffer is None else buffer * momentum + grad
    return (value - lr * buffer).detach(), buffer.detach()


def adam(value: torch.Tensor, grad: torch.Tensor, lr: float, extras: dict[str, torch.Tensor], name: str,
         betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> torch.Tensor:
    """One step of torch.optim.Adam's rule, out of place; its moments live in ``extras`` under ``name``
    so that a resumed run continues with the same optimiser state."""
    step = extras.get(f"{name}_adam_step", torch.zeros((), device=grad.device)) + 1
    first = extras.get(f"{name}_adam_m", torch.zeros_like(grad)) * betas[0] + (1 - betas[0]) * grad
    second = extras.get(f"{name}_adam_v", torch.zeros_like(grad)) * betas[1] + (1 - betas[1]) * grad * grad
    extras[f"{name}_adam_step"], extras[f"{name}_adam_m"], extras[f"{name}_adam_v"] = step, first, second
    corrected = (first / (1 - betas[0] ** step)) / ((second / (1 - betas[1] ** step)).sqrt() + eps)
    return (value - lr * corrected).detach()


class SyntheticImageMethod:
    """Base of the image condensation engines (DC/DSA, DM, MTT/DATM, DD); subclasses set ``method``, ``real`` and
    ``config`` (ipc, iterations, init, seed, lr_img, momentum_img) and implement ``step``."""

    method: str
    real: RealData
    config: object

    @property
    def total_steps(self) -> int:
        return self.config.iterations

    @property
    def divergence_hint(self) -> str:
        lr = self.config.lr_img
        return (f"likely cause: the image learning rate ({lr}) is too large for this model and data "
                f"(try --lr-img {lr / 10:g})")

    def restore(self, tensors: dict[str, torch.Tensor], iteration: int, losses: list[float]) -> MatchingState:
        return MatchingState.from_named_tensors(tensors, iteration, losses, self.real.device)

    def check_dsa_options(self) -> None:
        """A DSA strategy given to a run without DSA would be silently ignored: refuse it."""
        cfg = self.config
        if getattr(cfg, "dsa_strategy", None) and not getattr(cfg, "dsa", False):
            raise DistillsetError("dsa_strategy is set but dsa is off, so it would change nothing; set dsa true or drop it")

    def initial_state(self) -> MatchingState:
        """``ipc`` images per class, from Gaussian noise or random real images (stream (seed, method, 'init'))."""
        cfg, real = self.config, self.real
        k = real.num_classes
        labels = torch.arange(k, device=real.device).repeat_interleave(cfg.ipc)
        generator = make_generator(cfg.seed, self.method, "init")
        if cfg.init == "real":
            idx = real.sample_every_class(cfg.ipc, generator)
            images = real.images[idx].clone()
        else:
            images = torch.randn((k * cfg.ipc, *real.shape), generator=generator).to(real.device)
        return MatchingState(images, labels, None)

    def to_synset(self, state: MatchingState, extra_config: dict | None = None) -> SynSet:
        return SynSet.from_real(self.real, state.images, state.labels, method=self.method, ipc=self.config.ipc,
                                config={**asdict(self.config), **(extra_config or {})})

    def setup_guidance(self) -> None:
        """The pre-trained-model guidance of ``config.guide_models`` (methods.guidance), or none."""
        cfg, real = self.config, self.real
        self.guidance = None
        if not cfg.guide_models and (cfg.guide_weight != 1.0 or cfg.guide_per_iteration != 1):
            raise DistillsetError("guide_weight / guide_per_iteration (--guide-weight, --guide-per-iteration) weigh the "
                                  "guides of guide_models (--guide-models); give the guides, or drop those options")
        if getattr(cfg, "guide_models", ""):
            from .guidance import Guidance

            self.guidance = Guidance(cfg.guide_models, real.name, real.shape, real.num_classes, real.device,
                                     cfg.guide_weight, cfg.guide_per_iteration)

    def guidance_loss(self, images: torch.Tensor, labels: torch.Tensor, *stream: object) -> torch.Tensor:
        """The guides' weighted cross-entropy of this process's classes (all outside torchrun), as a
        share of the mean over every synthetic image so that ranks sum to the single-process value."""
        if getattr(self, "guidance", None) is None:
            return images.new_zeros(())
        from ..distributed import context

        classes = torch.tensor(context().mine(range(self.real.num_classes)), dtype=torch.long, device=labels.device)
        mine = torch.isin(labels, classes)
        generator = make_generator(self.config.seed, self.method, "guide", *stream)
        return self.guidance.loss(images[mine], labels[mine], generator, total=labels.numel())

    def image_optimizer(self, state: MatchingState) -> tuple[torch.Tensor, torch.optim.SGD]:
        """Leaf images and their SGD optimiser, with the momentum carried over from the last iteration."""
        images = state.images.detach().requires_grad_(True)
        optimizer = torch.optim.SGD([images], lr=self.config.lr_img, momentum=self.config.momentum_img)
        if state.momentum is not None:
            optimizer.state[images] = {"momentum_buffer": state.momentum.clone()}
        return images, optimizer

    @staticmethod
    def commit(state: MatchingState, images: torch.Tensor, optimizer: torch.optim.SGD, loss_per_class: float) -> float:
        """Store the updated images and momentum and advance the iteration."""
        state.images = images.detach()
        state.momentum = optimizer.state[images]["momentum_buffer"].detach().clone()
        state.iteration += 1
        state.losses.append(loss_per_class)
        return loss_per_class
