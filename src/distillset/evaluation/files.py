"""Evaluating a SynSet file against the real test split of the dataset it names, with the evaluation its
method declares (recorded in the file) unless the caller overrides it."""

from __future__ import annotations

import os
from collections.abc import Callable

from ..augment import make_augment
from ..data import load_dataset
from ..device import resolve_device
from ..distributed import local_device
from ..errors import DistillsetError
from ..models import build_model, check_model_name
from ..synset import SynSet
from .choice import candidates, choose, validation_split
from .protocol import EvalResults, evaluate_synset

PROTOCOL_DEFAULT_EPOCHS = (300, 1000)  # without / with augmentation, as the DC/DSA/DM papers


def model_protocol(declared: dict, dataset: str, model: str, augment: str = "auto", epochs: int | None = None,
                   batch_size: int | None = None, schedule: str = "reference") -> tuple[object, dict]:
    """(augmentation callable or None, protocol) of one evaluation model: the ``declared`` evaluation (a method's
    EvaluationSpec as a dict) unless ``augment``/``epochs``/``batch_size`` override it. The protocol names what
    was used, for the output: augment, epochs, batch_size, soft_labels and the lr ``schedule`` (TrainConfig's;
    "reference" by default, named so that results stored before it was the default are told apart)."""
    name = declared.get("augment", "none") if augment == "auto" else augment
    callable_ = make_augment(name, dataset, model)
    chosen_epochs = epochs or declared.get("epochs") or PROTOCOL_DEFAULT_EPOCHS[callable_ is not None]
    used = name if callable_ is not None else "none"
    if callable_ is not None and name == "dc":
        used = f"dc:{callable_.strategy}"
    return callable_, {"augment": used, "epochs": chosen_epochs, "batch_size": batch_size or declared.get("batch_size", 256),
                       "soft_labels": declared.get("soft_labels", True), "schedule": schedule}


def evaluate_file(path: str | os.PathLike, models: list[str], runs: int = 5, epochs: int | None = None,
                  lr: float | None = None, seed: int = 0, data_root=None, device: str | None = "cpu",
                  download: bool = False, verify: bool = True, strategy: str = "auto", augment: str = "auto",
                  batch_size: int | None = None, evaluation: dict | None = None,
                  log: Callable[[str], None] | None = None, labels: str = "stored", teacher: str | None = None,
                  temperature: float = 1.0, val_fraction: float = 0.0, grids: dict[str, list] | None = None,
                  val_runs: int | None = None, schedule: str = "reference", compile: bool = False) -> EvalResults:
    """Evaluate a SynSet file on the real test split of the dataset it names.

    By default every model trains as the set's method declares (``evaluation``, else the record in the file's
    config; e.g. DSA and 1000 epochs for DSA/DM/MTT/DATM sets, the DC code's augmentation for DC sets and
    coresets). ``augment`` ("none", "dsa", "dc"), ``epochs`` and ``batch_size`` override it; ``schedule`` places
    the lr step and ``compile`` compiles the training steps (:func:`~distillset.evaluation.protocol.evaluate_synset`).
    Each model's protocol is in the results (``protocol`` per model).

    ``labels``: "stored" (the set's soft labels when it has them, else its hard labels), "hard", or "teacher"
    (knowledge distillation from the pool members ``teacher`` names, at ``temperature``). ``grids`` (name ->
    values, names "lr", "epochs", "temperature") are choices made per model on a validation split of
    ``val_fraction`` of the training split (``val_runs`` networks per candidate, default ``runs``); the test split
    then trains ``runs`` networks with the chosen values, once. The choices and their validation scores are in
    ``config['selection']``."""
    synset = SynSet.load(path)
    image_size = tuple(synset.shape[1:]) if synset.dataset.startswith("imagefolder:") else None
    data = load_dataset(synset.dataset, data_root=data_root, download=download, verify=verify, image_size=image_size)
    if data.num_classes != synset.num_classes:
        raise DistillsetError(f"{path} has {synset.num_classes} classes but dataset '{synset.dataset}' has {data.num_classes}")
    declared = evaluation if evaluation is not None else dict(synset.config.get("evaluation") or {})
    if schedule == "learned":
        return _learned(synset, data, models, runs, seed, device, epochs=epochs, lr=lr, augment=augment, labels=labels,
                        batch_size=batch_size, grids=grids, val_fraction=val_fraction, compile=compile)
    for model in models:  # refuse an unknown name or a shape a model cannot take before any training starts
        check_model_name(model)
        build_model(model, synset.shape, synset.num_classes)
    torch_device = resolve_device(local_device(device))
    label_options = _label_options(labels, teacher, temperature, synset, torch_device)
    grids = {k: v for k, v in (grids or {}).items() if v}
    if grids and not val_fraction:
        raise DistillsetError(f"choosing {', '.join(grids)} needs a validation split: add --val-fraction (e.g. 0.1)")
    if "temperature" in grids and labels != "teacher":
        raise DistillsetError("a temperature grid applies to --labels teacher only")
    val_pixels = val_labels = None
    if grids:
        held = validation_split(data.train_labels, val_fraction, seed)
        val_pixels, val_labels = data.train_images[held], data.train_labels[held]
    combined: EvalResults | None = None
    selection = {}
    for model in models:
        callable_, protocol = model_protocol(declared, synset.dataset, model, augment, epochs, batch_size, schedule)
        settings = {"lr": lr, "epochs": protocol["epochs"], **label_options}

        def run(pixels, targets, n, **chosen):
            merged = {**settings, **chosen}
            return evaluate_synset(synset, pixels, targets, models=[model], runs=n, epochs=merged["epochs"], lr=merged["lr"],
                                   seed=seed, device=torch_device, strategy=strategy, augment=callable_,
                                   batch_size=protocol["batch_size"], use_soft_labels=protocol["soft_labels"] and labels != "hard",
                                   teacher=merged["teacher"], temperature=merged["temperature"], progress=log,
                                   schedule=schedule, compile=compile)

        if grids:
            chosen, scored = choose(candidates(grids), lambda option: run(val_pixels, val_labels, val_runs or runs,
                                                                           **option).results[model].mean)
            selection[model] = {"val_fraction": val_fraction, "val_images": int(len(val_labels)),
                                "val_runs": val_runs or runs, "candidates": scored, "chosen": chosen}
            if log:
                log(f"{model}: chose {chosen} on the validation split")
            settings.update(chosen)
            protocol["epochs"] = settings["epochs"]
        result = run(data.test_images, data.test_labels, runs)
        protocol["labels"] = result.config["labels"]  # what trained the networks: hard, stored (soft) or teacher
        result.results[model].protocol = protocol
        if combined is None:
            combined = result
            combined.config = {k: v for k, v in result.config.items() if k not in ("epochs", "augment", "batch_size", "models")}
            combined.config["models"] = list(models)
        else:
            combined.results.update(result.results)
    combined.config["declared_evaluation"] = declared
    if selection:
        combined.config["selection"] = selection
    return combined


def _learned(synset: SynSet, data, models: list[str], runs: int, seed: int, device, **others) -> EvalResults:
    """DD's own evaluation (:mod:`.learned_schedule`): the set fixes the network, the steps and their sizes, so every
    option that would choose them otherwise is refused rather than silently ignored."""
    from .learned_schedule import evaluate_learned_schedule

    defaults = {"epochs": None, "lr": None, "augment": "auto", "labels": "stored", "batch_size": None, "val_fraction": 0.0,
                "compile": False}
    given = [name for name, value in others.items() if name in defaults and value != defaults[name]]
    given += [f"{name}_grid" for name, values in (others.get("grids") or {}).items() if values]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise DistillsetError(f"--lr-schedule learned replays the set's own steps; {flags} cannot apply: drop "
                              f"{'them' if len(given) > 1 else 'it'}")
    model = str(synset.config.get("model", "convnet"))
    if models != ["convnet"] and models != [model]:
        raise DistillsetError(f"--lr-schedule learned trains the network the set was distilled for ({model}); "
                              f"drop --models or give --models {model}")
    return evaluate_learned_schedule(synset, data.test_images, data.test_labels, runs, seed=seed,
                                     device=resolve_device(local_device(device)))


def _label_options(labels: str, teacher: str | None, temperature: float, synset: SynSet, device) -> dict:
    """The teacher (loaded and checked) and temperature that ``labels`` asks for."""
    if labels not in ("stored", "hard", "teacher"):
        raise DistillsetError(f"unknown label mode '{labels}'; use hard, stored or teacher")
    if labels == "teacher":
        if not teacher:
            raise DistillsetError("--labels teacher needs --teacher POOL (a `distillset train-pool` folder or member file)")
        from .teacher import load_teacher

        return {"teacher": load_teacher(teacher, synset, device), "temperature": temperature}
    if teacher:
        raise DistillsetError(f"--teacher is used by --labels teacher only (here --labels {labels}); drop it or add "
                              "--labels teacher")
    return {"teacher": None, "temperature": temperature}
