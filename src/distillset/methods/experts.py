"""Expert trajectories for trajectory matching: networks trained on real data, saved after every epoch.

Layout of an expert folder (all writes atomic, so an interrupted run resumes after its last epoch):

* ``index.json``: format ``distillset.experts/1``, dataset, model, input shape, classes, parameter
  names and shapes, the training configuration, and per expert its file, epochs done and test accuracy.
* ``expert_0000.safetensors``: ``trajectory`` float32 [epochs_done + 1, P] (row 0 is the initialisation),
  plus ``momentum`` [P] while unfinished and momentum is used.
* ``zca.safetensors`` when the experts were trained on ZCA-whitened data: the distillation must use the
  same transform and store it in the SynSet.

Every random draw of expert i's epoch e comes from the stream (seed, 'expert', i, 'epoch', e), so a
resumed expert continues exactly as an uninterrupted one. The defaults are MTT's: SGD lr 0.01, no
momentum, no weight decay, batch 256, DSA augmentation, 50 epochs. ``optimizer="gsam"`` trains DATM's flat
experts instead (FTD: GSAM with rho 0.01, alpha 0.3, adaptive, around the same SGD; DATM trains 100 epochs).

On CUDA ``parallel`` experts train at once as one vmapped network (stacked parameters); on a CPU they
train one after another, which measured faster there (see the evaluation benchmark).
"""

from __future__ import annotations

import json
import shutil
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import grad_and_value, vmap

from ..device import to_device
from ..augment import DSA, strategy_for
from ..augment.zca import ZCA
from .gsam import gsam_direction
from ..data.real import RealData
from ..errors import DistillsetError
from ..fileio import atomic_write, atomic_write_json, read_index
from ..models import build_model
from ..models.registry import canonical_name
from ..seeding import make_generator
from .unroll import FlatStudent

EXPERT_FORMAT = "distillset.experts/1"
INDEX_FILE = "index.json"
ZCA_FILE = "zca.safetensors"


@dataclass
class ExpertConfig:
    model: str = "convnet"
    experts: int = 100  # MTT's buffer: 100 experts x 50 epochs
    epochs: int = 50
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 256
    dsa: bool = True
    dsa_strategy: str | None = None
    zca: bool = False
    zca_eps: float = 0.1
    zca_input: str = "pixels"  # the ZCA is fitted on raw [0, 1] pixels, as MTT/DATM (recorded so older folders stay usable)
    optimizer: str = "sgd"  # "sgd" (MTT's experts) or "gsam" (DATM's flat FTD experts: rho 0.01, alpha 0.3, adaptive)
    rho: float = 0.01
    alpha: float = 0.3
    seed: int = 0


def expert_file(i: int) -> str:
    return f"expert_{i:04d}.safetensors"


class ExpertTrainer:
    """Trains the experts of one folder, resuming whatever is already there."""

    def __init__(self, real: RealData, test: tuple[torch.Tensor, torch.Tensor], config: ExpertConfig, directory: Path,
                 dataset: str, parallel: int | None = None, log=print) -> None:
        if config.experts < 1 or config.epochs < 1:
            raise DistillsetError("--experts and --epochs must be at least 1")
        if config.optimizer not in ("sgd", "gsam"):
            raise DistillsetError(f"unknown expert optimizer '{config.optimizer}'; use sgd (MTT's) or gsam (DATM's)")
        if not (config.lr > 0 and config.momentum >= 0 and config.rho >= 0 and config.alpha >= 0):
            raise DistillsetError("--lr must be positive and --momentum, --rho and --alpha non-negative")
        self.config, self.directory, self.dataset, self.log = config, Path(directory), dataset, log
        self.real, self.test = real, test
        self.dsa = DSA(config.dsa_strategy or strategy_for(real.name)) if config.dsa else None
        probe = build_model(config.model, real.shape, real.num_classes, device=real.device)  # BN statistics on the data's device
        self.student = FlatStudent(probe)
        cuda = real.device.type == "cuda"
        self.parallel = max(1, parallel if parallel is not None else (8 if cuda else 1))
        if self.parallel > 1 and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in probe.modules()):
            log(f"{config.model} has BatchNorm, whose train-mode statistics cannot be vmapped across experts: "
                "training them one at a time")
            self.parallel = 1

    # ------------------------------------------------------------------------------------ index
    def index(self) -> dict:
        cfg = self.config
        return {"format": EXPERT_FORMAT, "dataset": self.dataset, "model": canonical_name(cfg.model),
                "shape": list(self.real.shape), "num_classes": self.real.num_classes, "num_params": self.student.num_params,
                "param_names": self.student.names, "param_shapes": [list(s) for s in self.student.shapes],
                "mean": list(self.real.mean), "std": list(self.real.std), "config": asdict(cfg), "experts": []}

    def bytes_needed(self) -> int:
        return self.config.experts * (self.config.epochs + 1) * self.student.num_params * 4

    def prepare(self) -> dict:
        """Create or reopen the folder; refuse one made with another configuration."""
        path = self.directory / INDEX_FILE
        fresh = self.index()
        if path.is_file():
            existing = _read_index(self.directory)
            keys = ("dataset", "model", "shape", "num_classes", "param_names", "config")
            if any(existing.get(k) != fresh[k] for k in keys if k != "config") or \
                    {k: v for k, v in existing["config"].items() if k != "experts"} != {k: v for k, v in fresh["config"].items() if k != "experts"}:
                raise DistillsetError(f"{self.directory} holds experts of a different configuration "
                                      f"({existing['dataset']}, {existing['model']}, {existing['config']}); choose another --out")
            fresh["experts"] = existing["experts"]
        fresh["experts"] += [{"file": expert_file(i), "epochs_done": 0, "test_accuracy": None}
                             for i in range(len(fresh["experts"]), self.config.experts)]
        fresh["config"]["experts"] = self.config.experts
        remaining = sum(self.config.epochs + 1 - e["epochs_done"] - (e["epochs_done"] > 0) for e in fresh["experts"])
        need = remaining * self.student.num_params * 4
        self.directory.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.directory).free
        self.log(f"{self.config.experts} experts x {self.config.epochs + 1} snapshots x {self.student.num_params:,} parameters: "
                 f"{self.bytes_needed() / 2**20:.1f} MiB on disk in all ({need / 2**20:.1f} MiB still to write; {free / 2**30:.1f} GiB free)")
        if need > free:
            raise DistillsetError(f"the experts need {need / 2**20:.0f} MiB but {self.directory} has {free / 2**20:.0f} MiB free; "
                                  "use fewer --experts or --epochs, or another --out")
        if self.config.zca and self.real.zca is not None:
            _save_zca(self.directory / ZCA_FILE, self.real.zca)
        atomic_write_json(path, fresh)
        return fresh

    # ------------------------------------------------------------------------------------ training
    def run(self) -> dict:
        index = self.prepare()
        todo = [i for i, e in enumerate(index["experts"]) if e["epochs_done"] < self.config.epochs]
        todo.sort(key=lambda i: -index["experts"][i]["epochs_done"])  # a group shares its epoch: resume alike ones together
        while todo:
            done = index["experts"][todo[0]]["epochs_done"]
            group = [i for i in todo if index["experts"][i]["epochs_done"] == done][:self.parallel]
            self._train_group(index, group)
            todo = [i for i in todo if i not in group]
        return index

    def _load_partial(self, i: int) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        path = self.directory / expert_file(i)
        if path.is_file():
            from ..synset import read_safetensors

            tensors, _ = read_safetensors(path)
            rows = list(tensors["trajectory"].unbind(0))  # kept on the host; only the last row goes to the device
            return rows, tensors.get("momentum")
        net = build_model(self.config.model, self.real.shape, self.real.num_classes,
                          make_generator(self.config.seed, "expert", i, "init"), self.real.device)
        return [FlatStudent.flatten(net).cpu()], None

    def _train_group(self, index: dict, group: list[int]) -> None:
        cfg, real = self.config, self.real
        states = [self._load_partial(i) for i in group]
        trajectories = [s[0] for s in states]
        thetas = to_device(torch.stack([t[-1] for t in trajectories]), real.device)
        have_momentum = all(s[1] is not None for s in states)
        momenta = torch.stack([s[1].to(real.device) for s in states]) if have_momentum else torch.zeros_like(thetas)
        done = len(trajectories[0]) - 1
        loss_fn = self._batched_loss() if len(group) > 1 else None
        n = real.images.shape[0]
        for epoch in range(done, cfg.epochs):
            generators = [make_generator(cfg.seed, "expert", i, "epoch", epoch) for i in group]
            finite = torch.ones(len(group), dtype=torch.bool, device=real.device)
            orders = to_device(torch.stack([torch.randperm(n, generator=g) for g in generators]), real.device)
            for begin in range(0, n, cfg.batch_size):
                idx = orders[:, begin:begin + cfg.batch_size]
                x = real.images[idx]
                if self.dsa is not None:
                    x = torch.stack([self.dsa(x[j], generators[j]) for j in range(len(group))])
                y = real.labels[idx]
                def gradient(at: torch.Tensor, x=x, y=y) -> tuple[torch.Tensor, torch.Tensor]:
                    if loss_fn is not None:
                        return loss_fn(at, x, y)
                    theta = at[0].clone().requires_grad_(True)
                    loss = F.cross_entropy(self.student(theta, x[0]), y[0])
                    return torch.autograd.grad(loss, theta)[0][None], loss.detach()[None]

                if cfg.optimizer == "gsam":  # the same augmented batch for both passes, as GSAM's closure
                    grads, losses = gsam_direction(gradient, thetas, cfg.rho, cfg.alpha)
                else:
                    grads, losses = gradient(thetas)
                finite &= torch.isfinite(losses)  # read once per epoch, so steps never wait for the GPU
                with torch.no_grad():
                    grads = grads + cfg.weight_decay * thetas
                    if cfg.momentum:  # torch.optim.SGD's rule: the first buffer is the gradient itself
                        momenta = momenta * cfg.momentum + grads if have_momentum else grads.clone()
                        have_momentum = True
                        grads = momenta
                    thetas = thetas - cfg.lr * grads
            if not bool(finite.all()):
                bad = [group[j] for j in range(len(group)) if not finite[j]]
                raise DistillsetError(f"expert(s) {bad} diverged (a NaN or infinite loss) in epoch {epoch + 1}; lower --lr")
            for j, i in enumerate(group):
                trajectories[j].append(thetas[j].to("cpu", copy=True))  # snapshots live on the host: no O(E^2) device copies
                finished = epoch + 1 == cfg.epochs
                accuracy = self._test_accuracy(thetas[j]) if finished else None
                self._save_expert(i, trajectories[j], None if finished or not cfg.momentum else momenta[j])
                index["experts"][i].update(epochs_done=epoch + 1, test_accuracy=accuracy)
            atomic_write_json(self.directory / INDEX_FILE, index)
            message = f"experts {group}: epoch {epoch + 1}/{cfg.epochs}"
            if epoch + 1 == cfg.epochs:
                message += ", test accuracy " + ", ".join(f"{100 * index['experts'][i]['test_accuracy']:.2f}%" for i in group)
            self.log(message)

    def _batched_loss(self):
        student = self.student

        def loss_of(theta, x, y):
            return F.cross_entropy(student(theta, x), y)

        return vmap(grad_and_value(loss_of))

    @torch.inference_mode()
    def _test_accuracy(self, theta: torch.Tensor) -> float:
        images, labels = self.test
        correct = 0
        for start in range(0, images.shape[0], 1024):
            out = self.student(theta, images[start:start + 1024])
            correct += int((out.argmax(1) == labels[start:start + 1024]).sum())
        return correct / images.shape[0]

    def _save_expert(self, i: int, trajectory: list[torch.Tensor], momentum: torch.Tensor | None) -> None:
        from safetensors.torch import save_file

        tensors = {"trajectory": torch.stack(trajectory).cpu().contiguous()}
        if momentum is not None:
            tensors["momentum"] = momentum.cpu().contiguous()
        meta = {"format": EXPERT_FORMAT, "epochs_done": str(len(trajectory) - 1)}
        atomic_write(self.directory / expert_file(i), lambda tmp: save_file(tensors, tmp, metadata=meta))


def _save_zca(path: Path, zca: ZCA) -> None:
    from safetensors.torch import save_file

    tensors = {"zca_mean": zca.mean.cpu().contiguous(), "zca_matrix": zca.matrix.cpu().contiguous()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"format": EXPERT_FORMAT}))


def _read_index(directory: Path) -> dict:
    return read_index(directory, INDEX_FILE, EXPERT_FORMAT, "an expert folder", f"distillset experts --dataset D --out {directory}",
                      required=("dataset", "model", "shape", "num_classes", "num_params", "config", "experts"))


class ExpertBuffer:
    """Read access to a finished expert folder, validated against the data and model it will be used with."""

    def __init__(self, directory: str | Path, dataset: str, model: str, shape: tuple[int, int, int], num_classes: int,
                 cache: int = 4) -> None:
        self.directory = Path(directory)
        index = _read_index(self.directory)
        if index["dataset"] != dataset:
            raise DistillsetError(f"the experts in {directory} were trained on '{index['dataset']}', not '{dataset}'")
        if index["model"] != canonical_name(model):
            raise DistillsetError(f"the experts in {directory} are '{index['model']}' networks, not '{canonical_name(model)}'; "
                                  f"use --model {index['model']} or train new experts")
        if tuple(index["shape"]) != tuple(shape) or index["num_classes"] != num_classes:
            raise DistillsetError(f"the experts in {directory} take {index['shape']} inputs and {index['num_classes']} classes, "
                                  f"the data has {list(shape)} and {num_classes}")
        try:
            epochs = int(index["config"]["epochs"])
            partial = [i for i, e in enumerate(index["experts"]) if e["epochs_done"] < epochs]
            files = [e["file"] for e in index["experts"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise DistillsetError(f"{self.directory / INDEX_FILE} is damaged ({type(exc).__name__}: {exc}); train the experts "
                                  "again") from None
        if partial:
            raise DistillsetError(f"{directory} is partial: expert(s) {partial[:10]} have fewer than {epochs} epochs; "
                                  "finish them by running the same `distillset experts` command again")
        missing = [f for f in files if not (self.directory / f).is_file()]
        if missing or not index["experts"]:
            raise DistillsetError(f"{directory} is missing expert file(s) {missing[:5] or '(none listed)'}; train the experts again")
        self.index, self.epochs = index, epochs
        self.zca = _load_zca(self.directory / ZCA_FILE) if index["config"].get("zca") else None
        # what the transform was fitted on: raw pixels since 2026-12-03 (MTT's way); earlier folders: normalised images
        self.zca_input = index["config"].get("zca_input", "normalised")
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._cache_size = cache

    def __len__(self) -> int:
        return len(self.index["experts"])

    @property
    def num_params(self) -> int:
        return int(self.index["num_params"])

    def trajectory(self, i: int) -> torch.Tensor:
        """Expert i's parameters after every epoch, [epochs + 1, P] (CPU)."""
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        from ..synset import read_safetensors

        path = self.directory / self.index["experts"][i]["file"]
        try:
            tensors, _ = read_safetensors(path)
        except DistillsetError as exc:
            raise DistillsetError(f"expert file {path} is unreadable ({exc}); train that expert again") from None
        trajectory = tensors.get("trajectory")
        if trajectory is None or tuple(trajectory.shape) != (self.epochs + 1, self.num_params):
            raise DistillsetError(f"expert file {path} holds {None if trajectory is None else list(trajectory.shape)}, "
                                  f"expected [{self.epochs + 1}, {self.num_params}]; train that expert again")
        if not torch.isfinite(trajectory).all():
            raise DistillsetError(f"expert file {path} contains NaN or infinite parameters; train that expert again")
        self._cache[i] = trajectory
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return trajectory


def _load_zca(path: Path) -> ZCA:
    from ..synset import read_safetensors

    if not path.is_file():
        raise DistillsetError(f"{path.parent} was trained with ZCA but {path.name} is missing; train the experts again")
    tensors, _ = read_safetensors(path)
    return ZCA(tensors["zca_mean"], tensors["zca_matrix"])



def train_experts(dataset: str, out: str | Path, config: ExpertConfig, data_root=None, device: str | None = "cpu",
                  download: bool = False, verify: bool = True, parallel: int | None = None, log=print) -> dict:
    """Train (or finish) the experts of ``out`` on ``dataset``; returns the index."""
    from ..data import load_dataset, real_data
    from ..device import resolve_device

    torch_device = resolve_device(device)
    data = load_dataset(dataset, data_root=data_root, download=download, verify=verify)
    real = real_data(data, "train", torch_device)
    test = real_data(data, "test", torch_device)
    if config.zca:
        existing = Path(out) / ZCA_FILE
        if existing.is_file():  # resume with the very transform the first epochs used
            real = real.apply_zca(_load_zca(existing).to(torch_device))
        else:
            log(f"fitting ZCA whitening (eps {config.zca_eps}) on {real.images.shape[0]} training images")
            real = real.whitened(config.zca_eps)
        test = test.apply_zca(real.zca)
    trainer = ExpertTrainer(real, (test.images, test.labels), config, Path(out), real.name, parallel, log)
    return trainer.run()
