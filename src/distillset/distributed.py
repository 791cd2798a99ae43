"""Running under torchrun: PyTorch's own process groups (NCCL on GPUs, gloo on CPUs), no home-made engine.

``torchrun --nproc-per-node P -m distillset condense ...`` starts P copies of the command with RANK,
WORLD_SIZE and LOCAL_RANK set. Every rank loads the data, draws the same random numbers from the same
seeded generators, and holds the same synthetic set; what is split is the work:

* DC/DSA/DM: the classes. Each rank computes the matching loss of its classes only (class c on rank
  c mod P), the image gradients are summed with all_reduce, and every rank takes the same optimiser
  step, so the SynSet stays identical everywhere. Classes touch disjoint images, so the sum is the
  single-process gradient up to floating-point reduction order.
* MTT/DATM: the trajectories of an iteration (``trajectories`` per iteration, split across ranks).
* Evaluation: the fresh models (run r on rank r mod P); accuracies are gathered on every rank.

Only rank 0 writes files and logs; checkpoints hold the full state, so a run resumes with any world size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import DistillsetError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mine(self, items: range | list) -> list:
        """This rank's share of ``items`` (round-robin, so uneven counts stay balanced)."""
        return list(items)[self.rank::self.world]

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks in place (a no-op in a single process)."""
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast(self, tensor: torch.Tensor, source: int = 0) -> torch.Tensor:
        if self.active:
            dist.broadcast(tensor, src=source)
        return tensor

    def gather_objects(self, value) -> list:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self.active:
            return [value]
        out = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


_CONTEXT = Context()


def context() -> Context:
    """The current process's place in the job (rank 0 of 1 outside torchrun)."""
    return _CONTEXT


def init_from_environment(device: str | None) -> Context:
    """Join the process group torchrun describes in the environment; a single process stays alone.

    The backend follows the device: NCCL for CUDA (each rank on cuda:LOCAL_RANK), gloo for the CPU.
    """
    global _CONTEXT
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _CONTEXT
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device is not None and str(device).startswith("cuda:"):
        raise DistillsetError(f"--device {device} under torchrun would put every rank on one GPU; use --device cuda (rank r "
                              "takes its local GPU; choose GPUs with CUDA_VISIBLE_DEVICES)")
    cuda = device is not None and str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    device_id = None
    if cuda:
        if not torch.cuda.is_available():
            raise DistillsetError("--device cuda under torchrun, but PyTorch sees no CUDA GPU; use --device cpu (gloo)")
        device_id = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device_id)
    if not dist.is_initialized():
        if device_id is not None:  # binds NCCL's communicator to this rank's GPU from the start
            dist.init_process_group(backend="nccl", device_id=device_id)
        else:
            dist.init_process_group(backend="gloo")
    _CONTEXT = Context(rank, world, local_rank)
    return _CONTEXT


def local_device(device: str | None) -> str | None:
    """Under torchrun, 'cuda' means this rank's own GPU."""
    ctx = context()
    if ctx.active and device in ("cuda", "auto") and torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()}"
    return device


def all_reduce_gradients(leaf: torch.Tensor, loss: torch.Tensor) -> float:
    """Sum ``leaf.grad`` over ranks (a rank without classes contributes zeros) and return the summed loss."""
    ctx = context()
    if not ctx.active:
        return float(loss.detach())
    if leaf.grad is None:
        leaf.grad = torch.zeros_like(leaf)
    ctx.all_reduce_sum(leaf.grad)
    return float(ctx.all_reduce_sum(loss.detach().clone().reshape(1)))


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers everywhere: ranks that ran the same computation may differ in the
    last bits on GPUs (non-deterministic kernels); this keeps them on one trajectory."""
    ctx = context()
    if ctx.active:
        with torch.no_grad():
            for tensor in list(module.parameters()) + list(module.buffers()):
                ctx.broadcast(tensor.data)


def shutdown() -> None:
    global _CONTEXT
    if dist.is_initialized():
        dist.destroy_process_group()
    _CONTEXT = Context()
