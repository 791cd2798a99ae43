"""Training one network on in-memory tensors, and testing it: the plain loop every layer above shares.

The evaluation protocol, the coresets' feature network and the applications train with this loop; it
sits below both evaluation and methods so that neither imports the other for it. SGD with momentum and
weight decay, lr x0.1 once at half the epochs (the DC/DSA/DM papers' schedule), a fresh permutation
per epoch from the caller's generator; targets are class indices or [N, K] logits (soft labels).
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .device import to_device
from .errors import DistillsetError
from .fileio import write_safetensors

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
SCHEDULES = ("half", "reference")  # where the one lr x0.1 step falls (TrainConfig)


@dataclass
class TrainConfig:
    """SGD training of one network. ``schedule`` places the single lr x0.1 step:

    - "half": ``epochs`` passes, the lr drops before pass ``epochs // 2`` and the momentum carries on (this
      library's own training: feature networks, NAS candidates).
    - "reference": the evaluation loop of the DC/DSA/DM/MTT code (``evaluate_synset``): ``for ep in
      range(Epoch + 1)`` trains ``epochs + 1`` passes, and after pass ``epochs // 2 + 1`` (from 0) it builds a new
      SGD at lr x0.1, so the momentum restarts from the next gradient. The published numbers are measured so.
    """

    epochs: int = 300
    lr: float = 0.01
    batch_size: int = 256
    momentum: float = 0.9
    weight_decay: float = 5e-4
    test_batch_size: int = 256
    schedule: str = "half"
    # torch.compile the network for the training steps (inductor fuses the norm, activation and pooling, which are
    # memory-bound on a CPU: a ConvNet step about 1.35x faster, BENCHMARKS.md). The same seed gives the same bytes
    # run to run on one machine, but not the eager loop's bytes (fused sums round differently, ~1e-4 in the
    # weights after 20 steps), so a stored result records it. Compiling costs ~20-30 s once per process and shape.
    compile: bool = False

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise DistillsetError(f"unknown training schedule '{self.schedule}'; use {' or '.join(SCHEDULES)}")

    @property
    def passes(self) -> int:
        """Passes over the data: the reference loop runs one more than its ``epochs``."""
        return self.epochs + 1 if self.schedule == "reference" else self.epochs

    @property
    def restarts_momentum(self) -> bool:
        """Whether the lr step comes with a new optimiser (the reference code's), so the momentum restarts."""
        return self.schedule == "reference"

    @property
    def decay_pass(self) -> int:
        """The first pass at lr x0.1 (never, when it is not below :attr:`passes`)."""
        return self.epochs // 2 + 2 if self.schedule == "reference" else self.epochs // 2


class TrainingDiverged(RuntimeError):
    """The loss of one run became NaN or infinite."""


def soft_cross_entropy(logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the softmax of stored logits (soft labels)."""
    return -(F.softmax(target_logits, dim=1) * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def distillation_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Knowledge distillation (Hinton et al. 2015), as SRe2L/RDED/DD-Ranking evaluate: T^2 * KL(softmax(t/T) ||
    softmax(s/T)), averaged over the batch (the T^2 keeps the gradient scale independent of T)."""
    return F.kl_div(F.log_softmax(logits / temperature, dim=1), F.log_softmax(teacher_logits / temperature, dim=1),
                    reduction="batchmean", log_target=True) * temperature ** 2


def train_model(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, config: TrainConfig,
                generator: torch.Generator, augment: Augment | None = None, *, lr_decay: bool = True,
                max_steps: int | None = None, on_batch: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
                on_epoch: Callable[[int], None] | None = None,
                teacher: Callable[[torch.Tensor], torch.Tensor] | None = None, temperature: float = 1.0,
                checkpoint: Path | None = None, checkpoint_seconds: float = 60.0,
                counters: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """Train in place on (images, targets); targets are class indices or [N, K] logits (soft labels). With a
    ``teacher`` (images -> logits) every augmented batch is relabelled by it and the loss is
    :func:`distillation_loss` at ``temperature``; ``targets`` are then unused.

    ``config.passes`` passes, or exactly ``max_steps`` minibatch steps (a fractional budget stops inside an
    epoch); with ``lr_decay`` the lr drops x0.1 once, at the start of pass ``config.decay_pass`` (see
    :class:`TrainConfig`'s ``schedule``), or at step max_steps // 2. ``on_batch(indices, detached logits)``
    sees every minibatch (the forgetting-event counter), ``on_epoch(epoch)`` every finished epoch from 1
    (checkpoints). A loss that is not finite raises :class:`TrainingDiverged` at the end of its epoch (the test
    runs on the device and is read once per epoch, so steps never wait for the GPU).

    ``checkpoint`` (a file path): the run's state (network, optimiser, the shuffle/augmentation generator, the
    step and epoch counters) is written there at the end of an epoch when ``checkpoint_seconds`` have passed
    since the last write, and a run that finds the file resumes from it. The resumed run ends with the same
    bytes as one never cut off (the state is the whole of what the loop carries from one epoch to the next);
    the file is removed when the run finishes. ``counters`` (name -> tensor, e.g. what ``on_batch`` accumulates)
    are saved with the state and restored in place, so a caller's per-sample counts resume with it."""
    soft = targets.dim() == 2
    forward = _compiled(model) if config.compile else model
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    n = images.shape[0]
    per_epoch = -(-n // config.batch_size)
    total = max_steps if max_steps is not None else config.passes * per_epoch
    decay_at = (total // 2 if max_steps is not None else config.decay_pass * per_epoch) if lr_decay else 0
    model.train()
    step = epoch = 0
    if checkpoint is not None and checkpoint.is_file():
        step, epoch = _restore_training(checkpoint, model, optimizer, generator, total, counters or {})
    last_write = time.monotonic()
    finite = torch.ones((), dtype=torch.bool, device=images.device)  # tested once per epoch: no per-step sync
    with _compile_errors(config.compile):  # a compiler failure, wherever in the loop, as one line
        while step < total:
            order = to_device(torch.randperm(n, generator=generator), images.device)
            for start in range(0, n, config.batch_size):
                if step == decay_at and step > 0:
                    for group in optimizer.param_groups:
                        group["lr"] = config.lr * 0.1
                    if config.restarts_momentum:
                        optimizer.state.clear()  # the reference code's new SGD: no momentum carried over
                batch = order[start:start + config.batch_size]
                x = images[batch]
                if augment is not None:
                    x = augment(x, generator)
                out = forward(x)
                if teacher is not None:
                    loss = distillation_loss(out, _teacher_logits(teacher, x), temperature)
                else:
                    loss = soft_cross_entropy(out, targets[batch]) if soft else F.cross_entropy(out, targets[batch])
                finite &= torch.isfinite(loss)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if on_batch is not None:
                    on_batch(batch, out.detach())
                step += 1
                if step >= total:
                    break
            epoch += 1
            if not bool(finite):
                raise TrainingDiverged(f"the loss became NaN or infinite in epoch {epoch}")
            if checkpoint is not None and step < total and time.monotonic() - last_write >= checkpoint_seconds:
                _save_training(checkpoint, model, optimizer, generator, step, epoch, total, counters or {})
                last_write = time.monotonic()
            if on_epoch is not None:
                on_epoch(epoch)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return model


def _compiled(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model`` under torch.compile. Parameters are graph inputs, so every fresh network of one architecture reuses
    the first one's compiled code; a second batch size (an epoch's last, shorter batch) recompiles once with a
    dynamic batch dimension."""
    return torch.compile(model)


@contextlib.contextmanager
def _compile_errors(compiling: bool) -> Iterator[None]:
    """A failure of torch.compile itself (no C++ compiler, an unsupported operation) as one line naming the fix."""
    try:
        yield
    except RuntimeError as exc:
        if not compiling:
            raise
        from torch._dynamo.exc import TorchDynamoException

        if not isinstance(exc, TorchDynamoException):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DistillsetError(f"torch.compile failed on this machine ({first}); train without compiling "
                              "(drop --compile)") from exc


def _save_training(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                   step: int, epoch: int, total: int, counters: dict[str, torch.Tensor]) -> None:
    """One training run's state between epochs, as safetensors (atomic): tensors only, nothing executable."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"counter.{k}": v.detach().cpu().contiguous() for k, v in counters.items()})
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
    tensors["generator"] = generator.get_state()
    lrs = [group["lr"] for group in optimizer.param_groups]
    write_safetensors(path, tensors, {"step": str(step), "epoch": str(epoch), "total": str(total), "lrs": json.dumps(lrs)})


def _restore_training(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                      total: int, counters: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Load :func:`_save_training`'s state into the run; a file of another run (its step count or tensors differ)
    is refused with the fix, never half-applied."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        step, epoch, stored_total, lrs = int(meta["step"]), int(meta["epoch"]), int(meta["total"]), json.loads(meta["lrs"])
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        raise DistillsetError(f"{path} is not a readable training checkpoint ({exc}); delete it to train that run "
                              "from the start") from None
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    own = model.state_dict()
    if stored_total != total or model_state.keys() != own.keys() or any(
            model_state[k].shape != own[k].shape for k in own) or len(lrs) != len(optimizer.param_groups) or any(
            f"counter.{k}" not in tensors or tensors[f"counter.{k}"].shape != v.shape for k, v in counters.items()):
        raise DistillsetError(f"{path} is the checkpoint of another training run (other network or schedule); "
                              "delete it or choose another checkpoint folder")
    model.load_state_dict(model_state)
    for name, value in counters.items():
        value.copy_(tensors[f"counter.{name}"])
    buffers: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            buffers.setdefault(int(index), {})[name] = value
    params = [p for group in optimizer.param_groups for p in group["params"]]  # the state's indices run over these
    state = optimizer.state_dict()
    state["state"] = {i: {name: value.to(params[i].device) for name, value in b.items()} for i, b in buffers.items()}
    for group, lr in zip(state["param_groups"], lrs):
        group["lr"] = lr
    optimizer.load_state_dict(state)
    generator.set_state(tensors["generator"])
    return step, epoch


@torch.no_grad()
def _teacher_logits(teacher: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return teacher(x)


@torch.inference_mode()
def test_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> float:
    """Accuracy on a test set. Channels-last with batches of 256 measured ~2x faster than NCHW with
    large batches for ConvNet inference on a 2-core CPU (see BENCHMARKS.md)."""
    was_training = model.training
    model.eval()
    # a channels-last COPY: converting the caller's model in inference mode would turn its parameters into
    # inference tensors that can no longer be trained (a pool member is tested, then trained further)
    net = copy.deepcopy(model).to(memory_format=torch.channels_last)
    model.train(was_training)
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size].contiguous(memory_format=torch.channels_last)
        correct += int((net(x).argmax(dim=1) == labels[start:start + batch_size]).sum())
    return correct / images.shape[0]


def shuffled_step_batches(num_images: int, batch: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Indices of successive training steps that walk through a shuffled order of ``num_images`` images, ``batch`` at
    a time (0: all), reshuffled when too few are left for a step. Lazy, so a caller that draws more from
    ``generator`` between steps (augmentation) sees the same stream as the loop written out. Trajectory methods
    unroll on these steps, and DD's evaluation replays them."""
    batch = min(batch, num_images) if batch > 0 else num_images
    order, cursor = torch.randperm(num_images, generator=generator), 0
    while True:
        if cursor + batch > num_images:
            order, cursor = torch.randperm(num_images, generator=generator), 0
        yield order[cursor:cursor + batch]
        cursor += batch


def fixed_step_groups(labels: torch.Tensor, steps: int) -> list[torch.Tensor]:
    """Indices of the images of each of ``steps`` training steps, the original Dataset Distillation code's way: every
    class's images (in stored order) are cut into ``steps`` equal groups and step s takes group s of every class, so
    a step sees every class. DD distils and evaluates its sets with these steps; both sides call this."""
    labels = torch.as_tensor(labels)
    per_class = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels).tolist()]
    counts = {len(idx) for idx in per_class}
    if len(counts) != 1 or next(iter(counts)) % steps:
        raise DistillsetError(f"fixed steps need the same number of images in every class, a multiple of {steps} "
                              f"(the steps); the classes have {sorted(counts)}")
    per = next(iter(counts)) // steps
    return [torch.cat([idx[s * per:(s + 1) * per] for idx in per_class]) for s in range(steps)]
