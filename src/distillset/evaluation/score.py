"""Leak-free robust scores of a set, in the spirit of DD-Ranking (Li et al. 2025): how much of a set's accuracy is
the data's own, and how much comes from soft labels and augmentation that would lift a random subset as well.

Every number is the mean final-epoch test accuracy (%) of ``runs`` fresh networks trained with the SAME protocol,
seeds and budget (the set's declared evaluation: its augmentation, epochs, batch, lr):

- ``hard``: the set with its class labels only;
- ``soft``: the set with its own labels (stored soft labels) or, given a teacher, knowledge distillation from
  it on every augmented batch; null when the set has neither;
- ``random_hard`` / ``random_soft``: a random subset of the real training split with the same number of images
  per class, in the set's input space (normalisation, ZCA), with hard labels / with the teacher (null without
  one: stored soft labels exist for the set's own images only);
- ``full``: the whole training split at a stated budget (``full_epochs``, ``full_runs``; cached per dataset,
  model, budget and seed), the ceiling;
- ``hlr`` (hard-label recovery) = full - hard: what the set still lacks with plain labels (lower is better);
- ``ior`` (improvement over random) = soft - random_soft: what the set adds over real images under the same
  label help (higher is better);
- ``ars`` (augmentation robustness): the set-minus-random gap with hard labels, with training augmentation
  (the set's own, or DSA when it declares none) and without, at the same budget, and their mean (a set whose
  advantage vanishes without augmentation scores low);
- ``bytes``: the storage of the set as stored (images, labels, soft labels, learned lr; not the dataset's ZCA).

Every network's accuracy is stored as it ends (``cache``/score-runs/, keyed by the set's bytes or the random
subset's recipe, the arm's protocol and the library version), so a score cut off resumes at its next network, and
a later score with more ``runs`` trains only the new ones (run r's network depends on (seed, model, r) only).

Where this differs from DD-Ranking: it reports raw accuracy differences in points, not DD-Ranking's exponential
combinations (its label-robust and augmentation-robust scores), so each figure reads as accuracy; the random
baseline has the set's per-class counts; and nothing is chosen on test accuracy (one final-epoch test).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch

from .._version import __version__
from ..augment.zca import ZCA
from ..data import load_dataset, real_data
from ..errors import DistillsetError
from ..fileio import atomic_write_json, cache_dir, read_keyed_json
from ..seeding import make_generator
from ..synset import SynSet, read_safetensors
from .files import model_protocol
from .protocol import each_run, evaluate_synset

STORED_TENSORS = ("images", "labels", "soft_labels", "lr")


def stored_bytes(path: str | Path) -> int:
    """Bytes of the set's own tensors as the file stores them (the dataset's ZCA transform is not the set's)."""
    tensors, _ = read_safetensors(path)
    return int(sum(t.numel() * t.element_size() for name, t in tensors.items() if name in STORED_TENSORS))


def real_in_set_space(synset: SynSet, data):
    """The real training split as the set's images are stored: its normalisation, and its ZCA when it has one."""
    real = real_data(data, "train", mean=list(synset.mean), std=list(synset.std))
    if synset.zca_mean is not None:
        real = real.apply_zca(ZCA(synset.zca_mean, synset.zca_matrix))
    return real


def random_budget(synset: SynSet, data) -> list[int]:
    """The set's images per class, refused (before any training) where the training split has fewer."""
    counts = torch.bincount(synset.labels, minlength=synset.num_classes).tolist()
    have = torch.bincount(torch.as_tensor(data.train_labels, dtype=torch.long), minlength=synset.num_classes).tolist()
    for c, (n, m) in enumerate(zip(counts, have)):
        if n > m:
            raise DistillsetError(f"the random baseline needs {n} images of class {c}, which has only {m} training images; "
                                  "score a smaller set")
    return counts


def random_subset(synset: SynSet, data, seed: int) -> SynSet:
    """A random subset of the real training split with the set's per-class counts, in the set's input space."""
    counts = random_budget(synset, data)
    real = real_in_set_space(synset, data)
    generator = make_generator(seed, "score", "random-subset")
    idx = torch.cat([real.sample_indices(c, n, generator) for c, n in enumerate(counts) if n])
    return SynSet.from_real(real, real.images[idx], real.labels[idx], method="random", ipc=max(counts),
                            config={"score_baseline_for": synset.method})


class Scorer:
    """Scores sets of one dataset, sharing the random baselines (per label budget) and the full reference."""

    def __init__(self, model: str = "convnet", runs: int = 5, seed: int = 0, data_root=None, device="cpu",
                 teacher: str | None = None, temperature: float = 1.0, full_epochs: int = 20, full_runs: int = 2,
                 full: bool = True, cache: Path | None = None, log: Callable[[str], None] | None = None,
                 epochs: int | None = None) -> None:
        """``epochs`` overrides the set's declared budget (the same for every arm)."""
        self.model, self.runs, self.seed, self.data_root, self.device = model, runs, seed, data_root, device
        self.epochs = epochs
        self.teacher_spec, self.temperature = teacher, temperature
        self.full_epochs, self.full_runs, self.full = full_epochs, full_runs, full
        self.cache, self.log = cache, log
        self._datasets: dict[str, object] = {}
        self._baselines: dict[tuple, float] = {}

    def score(self, path: str | Path, evaluation: dict | None = None) -> dict:
        """The scores of the set in ``path``; ``evaluation`` (e.g. driver.declared_evaluation for files made before
        methods recorded theirs) replaces the record in the file."""
        synset = SynSet.load(path)
        data = self._data(synset.dataset)
        if data.num_classes != synset.num_classes:
            raise DistillsetError(f"{path} has {synset.num_classes} classes but dataset '{synset.dataset}' has {data.num_classes}")
        declared = dict(evaluation if evaluation is not None else synset.config.get("evaluation") or {})
        own_augment, protocol = model_protocol(declared, synset.dataset, self.model, epochs=self.epochs)
        own = protocol["augment"]  # "none", "dsa" or "dc:<strategy>": the set's published evaluation
        augments = {own: own_augment, "none": None}
        robust = own
        if own_augment is None:  # the robustness arm needs an augmentation: DSA, at the same budget
            augments["dsa"] = model_protocol({**declared, "augment": "dsa"}, synset.dataset, self.model)[0]
            robust = "dsa"
        lr = float(synset.lr) if synset.lr is not None else 0.01
        teacher = None
        if self.teacher_spec:
            from .teacher import load_teacher

            teacher = load_teacher(self.teacher_spec, synset, self.device)
        random_sets: list[SynSet] = []  # built on the first missing baseline only: every later one is cached
        budget = tuple(random_budget(synset, data))

        set_identity = {"file_sha256": file_sha256(path)}

        def accuracy(s: SynSet, augment: str, labels: str) -> float:
            identity = set_identity if s is synset else {"random_subset": {"dataset": synset.dataset, "counts": list(budget),
                                                                           "seed": self.seed, "mean": list(synset.mean),
                                                                           "std": list(synset.std),
                                                                           "zca": synset.zca_mean is not None}}
            arm = {**identity, "model": self.model, "seed": self.seed, "augment": augment, "labels": labels,
                   "epochs": protocol["epochs"], "batch_size": protocol["batch_size"], "lr": lr,
                   "teacher": self.teacher_spec if labels == "teacher" else None,
                   "temperature": self.temperature if labels == "teacher" else None, "version": __version__}
            return 100 * self._runs_of(arm, s, data, lambda: dict(
                lr=lr, seed=self.seed, device=self.device, augment=augments[augment], epochs=protocol["epochs"],
                batch_size=protocol["batch_size"], use_soft_labels=labels == "stored",
                teacher=teacher if labels == "teacher" else None, temperature=self.temperature))

        def baseline(augment: str, labels: str) -> float:
            key = (synset.dataset, budget, augment, labels, protocol["epochs"], protocol["batch_size"], lr, self.teacher_spec)
            if key not in self._baselines:
                if not random_sets:
                    random_sets.append(random_subset(synset, data, self.seed))
                self._baselines[key] = accuracy(random_sets[0], augment, labels)
            return self._baselines[key]

        soft_mode = "teacher" if teacher is not None else "stored" if synset.soft_labels is not None else None
        hard = accuracy(synset, own, "hard")
        soft = accuracy(synset, own, soft_mode) if soft_mode else None
        random_hard = baseline(own, "hard")
        random_soft = baseline(own, "teacher") if teacher is not None else None
        gaps = {own: hard - random_hard}
        for arm in (robust, "none"):
            if arm not in gaps:
                gaps[arm] = accuracy(synset, arm, "hard") - baseline(arm, "hard")
        gap_with, gap_without = gaps[robust], gaps["none"]
        full = self._full(synset, data) if self.full else None
        return {"set": str(path), "method": synset.method, "dataset": synset.dataset, "images": len(synset),
                "hard": hard, "soft": soft, "random_hard": random_hard, "random_soft": random_soft, "full": full,
                "hlr": None if full is None else full - hard,
                "ior": None if soft is None or random_soft is None else soft - random_soft,
                "ars": {"gap_with_augmentation": gap_with, "gap_without_augmentation": gap_without,
                        "mean": (gap_with + gap_without) / 2, "augmentation": robust},
                "bytes": stored_bytes(path),
                "protocol": {"model": self.model, "runs": self.runs, "seed": self.seed, "augment": own,
                             "epochs": protocol["epochs"], "batch_size": protocol["batch_size"], "lr": lr,
                             "soft_labels": soft_mode, "teacher": teacher.names if teacher is not None else None,
                             "temperature": self.temperature if teacher is not None else None,
                             "full": {"epochs": self.full_epochs, "runs": self.full_runs, "augment": "none"} if self.full else None,
                             "selection": "final epoch; nothing chosen on test accuracy"}}

    def _runs_of(self, arm: dict, synset: SynSet, data, options: Callable[[], dict]) -> float:
        """Mean final-epoch accuracy (a fraction) of runs 0..runs-1 of one arm, each network stored as it ends and
        read back when present (module docstring); a network that diverged counts as in evaluate_synset: left out
        of the mean, and the arm fails if every network did."""
        digest = hashlib.sha256(json.dumps(arm, sort_keys=True).encode()).hexdigest()[:24]
        store = (self.cache or cache_dir()) / "score-runs" / f"{digest}.json"
        runs = stored_runs(store, arm)
        done = {int(r) for r in runs}
        if any(r not in done for r in range(self.runs)):
            for run, acc, failure, _, _ in each_run(synset, data.test_images, data.test_labels, self.model, self.runs,
                                                   skip=done, **options()):
                # another process scoring a set of the same arm (the random baselines are shared) may have stored
                # networks meanwhile: keep them (a network's accuracy is the same whoever trains it)
                runs = {**stored_runs(store, arm), **runs, str(run): acc if failure is None else failure}
                atomic_write_json(store, {"arm": arm, "runs": runs})
        accs = [runs[str(r)] for r in range(self.runs) if not isinstance(runs[str(r)], str)]
        if not accs:
            raise DistillsetError(f"every network of the {arm['labels']}-label, {arm['augment']} arm diverged: "
                                  "the set cannot be scored at this lr")
        return sum(accs) / len(accs)

    def _data(self, name: str):
        if name not in self._datasets:
            self._datasets[name] = load_dataset(name, data_root=self.data_root)
        return self._datasets[name]

    def _full(self, synset: SynSet, data) -> float:
        """The whole training split, no augmentation, ``full_epochs`` x ``full_runs``: cached on disk."""
        key = {"dataset": synset.dataset, "model": self.model, "epochs": self.full_epochs, "runs": self.full_runs,
               "seed": self.seed, "mean": list(synset.mean), "std": list(synset.std), "zca": synset.zca_mean is not None}
        name = "-".join(str(key[k]) for k in ("dataset", "model", "epochs", "runs", "seed")).replace(":", "_").replace("/", "_")
        cache = (self.cache or cache_dir()) / "full-reference" / f"{name}.json"
        stored = read_keyed_json(cache, "key", key)
        if stored and isinstance(stored.get("accuracy"), (int, float)):
            return float(stored["accuracy"])
        if self.log:
            self.log(f"training the whole-data reference on {synset.dataset} ({self.full_runs} x {self.full_epochs} epochs; cached)")
        real = real_in_set_space(synset, data)
        whole = SynSet.from_real(real, real.images, real.labels, method="whole", ipc=0)
        result = evaluate_synset(whole, data.test_images, data.test_labels, models=[self.model], runs=self.full_runs,
                                 epochs=self.full_epochs, seed=self.seed, device=self.device)
        accuracy = 100 * result.results[self.model].mean
        atomic_write_json(cache, {"key": key, "accuracy": accuracy, "accs": result.results[self.model].accs})
        return accuracy


def stored_runs(store: Path, arm: dict) -> dict[str, float | str]:
    """The networks of ``arm`` stored in ``store`` (run index -> accuracy, or why it diverged); none if the file is
    missing, damaged or for another arm."""
    stored = read_keyed_json(store, "arm", arm)
    runs = stored.get("runs") if stored else None
    if not isinstance(runs, dict) or not all(isinstance(r, str) and r.isdigit() for r in runs):
        return {}
    return dict(runs)


def file_sha256(path: str | Path) -> str:
    """The file's SHA-256: what identifies a set's stored runs, wherever the file is moved."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def score_table(scores: list[dict]) -> str:
    """Markdown: one row per set."""
    def pct(v):
        return "-" if v is None else f"{v:.2f}"

    lines = ["| set | method | images | hard | soft | random hard | random soft | full | HLR | IOR | ARS | bytes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in scores:
        lines.append(f"| {s['set']} | {s['method']} | {s['images']} | {pct(s['hard'])} | {pct(s['soft'])} | "
                     f"{pct(s['random_hard'])} | {pct(s['random_soft'])} | {pct(s['full'])} | {pct(s['hlr'])} | "
                     f"{pct(s['ior'])} | {s['ars']['mean']:.2f} | {s['bytes']:,} |")
    return "\n".join(lines)

