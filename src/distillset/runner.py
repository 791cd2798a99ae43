"""The run folder: DIR/synset.safetensors, DIR/run.json, DIR/grid.png (images), DIR/checkpoint.safetensors.

Everything a resumable run keeps on disk, for every method: recognising a finished run (same
configuration: done, nothing recomputed; different configuration: refuse rather than overwrite
someone's results), the one checkpoint format (a state's named tensors + iteration + losses + the
run's configuration), and writing the result atomically, run.json last (its 'complete' status marks
the run finished).
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import DistillsetError
from .fileio import atomic_write_json, write_safetensors

LOCK_FILE = ".lock"
SYNSET_FILE = "synset.safetensors"
RUN_FILE = "run.json"
GRID_FILE = "grid.png"
CHECKPOINT_FILE = "checkpoint.safetensors"

Log = Callable[[str], None]


@dataclass
class RunOutcome:
    synset: Any  # SynSet or GraphSynSet
    directory: Path
    resumed: bool
    record: dict


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform module says. CPU results repeat bit for bit
    only on the same CPU: the math libraries pick their kernels (and so their rounding) by the processor."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device | str | None = None) -> dict:
    """Where a run ran: versions, machine, the CPU's model and the instruction set PyTorch's kernels use, threads,
    and the numerics settings (device, GPU name, CUDA and cuDNN versions, TF32, deterministic kernels) that decide
    whether it repeats bit for bit."""
    from .device import numerics_settings

    record = {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
              "processor": platform.processor() or platform.machine(), "cpu": cpu_model(),
              "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}
    if device is not None:
        record["device"] = str(device)
    record["numerics"] = numerics_settings()
    return record


class RunLock:
    """An OS file lock on DIR/.lock, held while a run works in DIR: a second process (another seed, another
    method, the same command twice) is refused at once with the holder's pid, rather than interleaving its
    files with the first's. The lock dies with its process, so a killed run never leaves it stuck."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.handle = None

    def __enter__(self) -> "RunLock":
        import fcntl

        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / LOCK_FILE
        handle = open(path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise DistillsetError(f"{self.directory} is in use by a run of process {holder}; wait for it to finish, "
                                  "or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None:  # the file goes first, then the lock with the handle: a finished folder is clean
            (self.directory / LOCK_FILE).unlink(missing_ok=True)
            self.handle.close()
            self.handle = None


def finished_run(directory: Path, config: dict) -> dict | None:
    """The record of a completed run of this configuration in ``directory``, if there is one."""
    record_path = directory / RUN_FILE
    if not (record_path.is_file() and (directory / SYNSET_FILE).is_file()):
        return None
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("status") != "complete":
        return None
    if record.get("config") != config:
        raise DistillsetError(
            f"{directory} already holds a finished run with a different configuration ({record.get('config')}); "
            "choose another --out or delete that directory"
        )
    return record


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], iteration: int, losses: list[float], config: dict) -> None:
    """One format for every method: the state's named tensors (on the CPU) + iteration + losses + the run's identity."""
    cpu = {name: value.detach().cpu().contiguous() for name, value in tensors.items()}
    meta = {"iteration": str(iteration), "losses": json.dumps(losses), "config": json.dumps(config, sort_keys=True),
            "threads": str(torch.get_num_threads())}
    write_safetensors(path, cpu, meta)


@dataclass
class Checkpoint:
    tensors: dict[str, torch.Tensor]
    iteration: int
    losses: list[float]
    threads: int | None  # CPU threads of the process that wrote it (None for checkpoints without the record)


def read_checkpoint(path: Path, config: dict) -> Checkpoint | None:
    """The checkpoint at ``path``, None when there is none; one of another configuration is refused."""
    from .synset import read_safetensors

    if not path.is_file():
        return None
    tensors, meta = read_safetensors(path)
    if json.loads(meta.get("config", "null")) != json.loads(json.dumps(config, sort_keys=True)):
        raise DistillsetError(f"{path} is a checkpoint of a different configuration; choose another --out or delete it")
    try:
        iteration, losses = int(meta["iteration"]), [float(v) for v in json.loads(meta["losses"])]
    except (KeyError, ValueError, TypeError):
        raise DistillsetError(f"{path} is a damaged checkpoint (its iteration or losses cannot be read); delete it to "
                              "start the run again") from None
    threads = meta.get("threads", "")
    return Checkpoint(tensors, iteration, losses, int(threads) if threads.isdigit() else None)


def load_checkpoint(path: Path, config: dict) -> tuple[dict[str, torch.Tensor], int, list[float]] | None:
    """(tensors, iteration, losses) of :func:`read_checkpoint`, as an engine's ``restore`` takes them."""
    stored = read_checkpoint(path, config)
    return None if stored is None else (stored.tensors, stored.iteration, stored.losses)


def write_run(synset, directory: Path, config: dict, timings: dict, log: Log, metrics: dict | None = None,
              device: torch.device | str | None = None) -> RunOutcome:
    """Write the set (and, for images, its grid), then run.json last (its 'complete' status marks the run finished)."""
    directory.mkdir(parents=True, exist_ok=True)
    synset.save(directory / SYNSET_FILE)
    summary = {"file": SYNSET_FILE, "method": synset.method, "size": len(synset)}
    written = [directory / SYNSET_FILE]
    if hasattr(synset, "adjacency"):  # a graph: nodes and edges; no picture
        summary.update(nodes=len(synset), edges=int((synset.adjacency > 0).sum()) // 2)
    else:
        from .visualize import save_grid

        save_grid(synset, directory / GRID_FILE)
        written.append(directory / GRID_FILE)
        summary.update(images=len(synset), shape=list(synset.shape))
    record = {"status": "complete", "config": config, "timings_s": timings, "metrics": metrics or {}, "synset": summary,
              "environment": environment(device)}
    atomic_write_json(directory / RUN_FILE, record)
    unit = "nodes" if hasattr(synset, "adjacency") else "images"
    log(f"wrote {written[0]} ({len(synset)} {unit}), {', '.join(str(p) for p in written[1:] + [directory / RUN_FILE])}")
    return RunOutcome(synset, directory, False, record)
