"""The one driver of every registered method, image or graph, condensation or selection.

In memory (:func:`run_in_memory`, and its shapes :func:`condense_real`, :func:`condense_graph`,
:func:`make_coreset`) or into a run folder (:func:`run_method`): resume from the checkpoint there,
checkpoints every ``checkpoint_every`` steps, periodic evaluation, progress, torchrun (only rank 0 speaks and
writes), run.json. Every random draw of step i derives from (seed, i), so a resumed run ends with the
tensors an uninterrupted one would; a NaN loss stops the run with the engine's hint and keeps the last good
checkpoint.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .catalogue import MethodSpec, get_method
from .device import resolve_device
from .distributed import context, local_device
from .errors import DistillsetError
from .fileio import check_writable_folder, read_yaml_mapping, remove_stale_temporaries
from .models import check_model_fits, check_model_name
from .runner import (CHECKPOINT_FILE, SYNSET_FILE, Log, RunLock, RunOutcome, finished_run, read_checkpoint, save_checkpoint,
                     write_run)
from .synset import SynSet

# options that do not change what a run computes, left out of its identity (none today: torch.compile's
# kernels round differently from eager ones, so a compiled run resumed eagerly would not be the same run)
NOT_IDENTITY: tuple[str, ...] = ()


def modality_of(dataset: str) -> str:
    from .graph.data import is_graph_dataset

    return "graph" if is_graph_dataset(dataset) else "image"


def method_for(name: str, dataset: str, kind: str | None = None) -> MethodSpec:
    """The registered method ``name`` for the modality of ``dataset``, with a message that says what fits."""
    from .catalogue import list_methods

    modality = modality_of(dataset)
    names = {s.name for s in list_methods(kind, modality)}
    if name not in names:
        other = [s for s in list_methods(kind) if s.name == name]
        if other:
            article = "an" if modality == "image" else "a"
            raise DistillsetError(f"'{dataset}' is {article} {modality} dataset; --method {name} is for {other[0].modality} data "
                                  f"({modality} {kind or 'method'} methods: {', '.join(sorted(names))})")
        return get_method(name, modality, kind)  # raises the unknown-name message
    return get_method(name, modality, kind)


def read_options_file(path: str | os.PathLike | None) -> dict:
    """Method options from a YAML mapping (keys as the method's config fields; checked when the config is built)."""
    return read_yaml_mapping(path, "config") if path else {}


def with_presets(spec: MethodSpec, dataset: str, options: dict | None) -> tuple[dict, str | None]:
    """``options`` over the method's published setting for ``dataset`` at the run's ipc (when the method has presets;
    the user's options win), and a line saying which setting applied (said once the run is sure to start)."""
    options = dict(options or {})
    ipc = options.get("ipc")
    if not spec.presets or ipc is None:
        return options, None
    from .presets import preset_for, preset_ipcs

    preset = preset_for(spec.presets, dataset, ipc)
    if preset is None:
        published = preset_ipcs(spec.presets, dataset)
        return options, (f"{spec.name}: no published setting for {dataset} at ipc {ipc}"
                         f"{f' (published: ipc {published})' if published else ''}; the method's defaults apply")
    kept = {k: v for k, v in preset.items() if k not in options}
    overridden = sorted(set(preset) - set(kept))
    note = (f"{spec.name}: the published setting for {dataset} ipc {ipc}: " + ", ".join(f"{k} {v}" for k, v in kept.items())
            + (f" (given options win: {', '.join(overridden)})" if overridden else ""))
    return {**preset, **options}, note


def build_engine(spec: MethodSpec, data, options: dict | None = None, source: str | None = None, log: Log | None = None):
    """(config, engine) of ``spec`` on ``data``; the config is validated against its declared constraints first."""
    options, note = with_presets(spec, getattr(data, "name", ""), options)
    config = spec.make_config(options, source)
    if getattr(config, "model", None) is not None:
        check_model_name(config.model)
    _check_models_fit(config, data)
    engine = spec.build(data, config)
    if note and log:
        log(note)
    return config, engine


def _check_models_fit(config, data) -> None:
    """Image methods: every network the config names must train on one image of the data's shape."""
    if not hasattr(data, "shape") or not hasattr(data, "num_classes"):
        return  # graphs
    for field_name in ("model", "feature_model"):
        name = getattr(config, field_name, None)
        if name:
            check_model_fits(name, tuple(data.shape), data.num_classes)


def check_output_folder(out: str | os.PathLike) -> Path:
    """The run folder ``out``, refused before any work when it cannot be one: empty, a file, under a file, or in a
    place this process cannot write."""
    if not str(out).strip():
        raise DistillsetError("--out is empty; give the folder the run should write to")
    return check_writable_folder(out, "--out")


def finish(spec: MethodSpec, engine, state, dataset: str | None = None):
    """The engine's set, with the evaluation its method declares recorded in the set's config."""
    synset = engine.to_synset(state)
    synset.config = {**synset.config, "method": spec.name, "evaluation": spec.evaluation.as_dict()}
    if dataset is not None:
        synset.config["dataset"] = dataset
    return synset


def run_in_memory(spec: MethodSpec, data, options: dict | None = None, log: Log | None = None):
    """Build, run every step, return the set: for applications that make many small sets."""
    _, engine = build_engine(spec, data, options, log=log)
    if log is not None and hasattr(engine, "log"):
        engine.log = log
    state = engine.initial_state()
    while state.iteration < engine.total_steps:
        try:
            engine.step(state)
        except FloatingPointError as exc:
            raise DistillsetError(f"{spec.name} on {getattr(data, 'name', 'the data')}: {exc}; {engine.divergence_hint}") from None
    return finish(spec, engine, state)


def condense_real(method: str, real, ipc: int, model: str = "convnet", iterations: int | None = None, seed: int = 0,
                  options: dict | None = None) -> SynSet:
    """An image method (condensation or selection) on in-memory RealData, e.g. a class-incremental step or a NAS proxy."""
    spec = get_method(method, "image")
    merged = {**(options or {}), "ipc": ipc, "seed": seed}
    fields = spec.config_class.__dataclass_fields__
    if "model" in fields:
        merged["model"] = model
    if iterations is not None:
        if "iterations" not in fields:
            raise DistillsetError(f"--method {method} takes no iterations")
        merged["iterations"] = iterations
    return run_in_memory(spec, real, merged)


def condense_graph(method: str, graph, reduction: float, epochs: int | None = None, seed: int = 0, options: dict | None = None):
    """A graph method (condensation or node selection) on in-memory GraphData: the graph twin of condense_real."""
    merged = {**(options or {}), "reduction": reduction, "seed": seed}
    if epochs is not None:
        merged["epochs"] = epochs
    return run_in_memory(get_method(method, "graph"), graph, merged)


FEATURE_OPTIONS = ("feature_model", "feature_epochs")


def make_coreset(method: str, real, ipc: int | None = None, seed: int = 0, ratio: float | None = None, log: Log | None = None,
                 **options) -> SynSet:
    """Select real images with a registered image selection method (``options``: its config fields). The feature
    network's ``feature_model``/``feature_epochs`` may be given to any method, so one call shape serves a table of
    methods; those that rank no embeddings (random) do not take them. Any other unknown option is refused."""
    spec = get_method(method, "image", "selection")
    fields = spec.config_class.__dataclass_fields__
    options = {k: v for k, v in options.items() if k in fields or k not in FEATURE_OPTIONS}
    return run_in_memory(spec, real, {**options, "ipc": ipc, "ratio": ratio, "seed": seed}, log)


def _load_data(spec: MethodSpec, dataset: str, data_root, device, download: bool, verify: bool, image_size):
    if spec.modality == "graph":
        from .graph.data import load_graph

        return load_graph(dataset, data_root, verify=verify).to(device)
    from .data import load_dataset, real_data

    data = load_dataset(dataset, data_root=data_root, download=download, verify=verify, image_size=image_size)
    return data, real_data(data, "train", device)


def declared_evaluation(path: str | os.PathLike) -> dict:
    """The evaluation a SynSet file's method declares: recorded in the file since 2026-12-03; for an older
    file, its method's current declaration from the registry; none for a method the registry does not know."""
    synset = SynSet.load(path)
    recorded = synset.config.get("evaluation")
    if recorded:
        return dict(recorded)
    from .catalogue import list_methods

    name = synset.method.split(":", 1)[-1]
    kind = "selection" if synset.method.startswith("coreset:") else "condensation"
    matches = [s for s in list_methods(kind, "image") if s.name == name]
    return matches[0].evaluation.as_dict() if matches else {}


def evaluate_default(spec: MethodSpec, synset, dataset_or_graph, runs: int, epochs: int | None, seed: int, device) -> tuple[float, float, list]:
    """Mean, std and accuracies of ``runs`` fresh default networks trained on ``synset`` with the method's declared
    evaluation (graphs: GCN on the real graph; images: ConvNet-family model of the config, DSA when declared)."""
    if spec.modality == "graph":
        from .graph.evaluate import evaluate_graph

        result = evaluate_graph(synset, dataset_or_graph, ["gcn"], runs=runs, epochs=epochs or spec.evaluation.epochs or 600,
                                seed=seed, device=device)["gcn"]
        return result.mean, result.std, list(result.accs)
    from .evaluation import evaluate_synset
    from .evaluation.files import model_protocol

    data = dataset_or_graph
    model = synset.config.get("model", "convnet")
    augment, protocol = model_protocol(spec.evaluation.as_dict(), data.name, model, epochs=epochs)
    result = evaluate_synset(synset, data.test_images, data.test_labels, models=[model], runs=runs, epochs=protocol["epochs"],
                             seed=seed, device=device, augment=augment, batch_size=protocol["batch_size"],
                             use_soft_labels=protocol["soft_labels"]).results[model]
    return result.mean, result.std, list(result.accs)


def run_identity(spec: MethodSpec, dataset: str, config, image_size=None) -> dict:
    """What makes two runs the same run (a finished one is reused, a checkpoint resumed, anything else refused)."""
    identity = {"command": "condense" if spec.kind == "condensation" else "coreset", "method": spec.name, "dataset": dataset,
                **{k: v for k, v in asdict(config).items() if k not in NOT_IDENTITY}}
    if image_size:
        identity["image_size"] = list(image_size)
    if torch.are_deterministic_algorithms_enabled():  # --deterministic changes GPU numerics: a run of its own
        identity["deterministic"] = True
    return identity


def run_method(method: str, dataset: str, out: str | os.PathLike, options: dict | None = None, *, kind: str | None = None,
               data_root=None, device: str | None = "cpu", download: bool = False, verify: bool = True,
               image_size: tuple[int, int] | None = None, checkpoint_every: int = 10, eval_every: int = 0, eval_runs: int = 2,
               eval_epochs: int | None = None, progress: bool = True, stop_after: int | None = None,
               log: Log = print) -> RunOutcome | None:
    """Run ``method`` on ``dataset`` into the folder ``out`` (resumable; see the module docstring).

    ``options`` are the method's config fields (ipc or reduction, seed, iterations or epochs, model, ...).
    ``stop_after`` ends the call after that many new steps (checkpoint written), as an interrupted run would;
    the same call again resumes. Returns None then, else the outcome."""
    spec = method_for(method, dataset, kind)
    if checkpoint_every < 1:
        raise DistillsetError(f"--checkpoint-every must be at least 1, got {checkpoint_every}")
    if eval_every < 0:
        raise DistillsetError(f"--eval-every must be 0 (never) or positive, got {eval_every}")
    options, preset_note = with_presets(spec, dataset, options)
    config = spec.make_config(options)
    if getattr(config, "model", None) is not None:
        check_model_name(config.model)
    directory = check_output_folder(out)
    identity = run_identity(spec, dataset, config, image_size)
    record = finished_run(directory, identity)
    if record is not None:
        log(f"{directory} already holds this finished run; nothing to do")
        return RunOutcome(_synset_class(spec).load(directory / SYNSET_FILE), directory, True, record)
    ctx = context()
    if not ctx.is_main:  # under torchrun only rank 0 speaks and writes
        log, progress = (lambda message: None), False
    torch_device = resolve_device(local_device(device))
    t0 = time.perf_counter()
    loaded = _load_data(spec, dataset, data_root, torch_device, download, verify, image_size)
    data, train = loaded if spec.modality == "image" else (loaded, loaded)
    _check_models_fit(config, train)
    engine = spec.build(train, config)
    if preset_note:
        log(preset_note)
    if hasattr(engine, "log"):
        engine.log = log
    lock = RunLock(directory) if ctx.is_main else nullcontext()
    with lock:  # one run per folder; what an interrupted write left behind is cleared under the lock
        if ctx.is_main:
            record = finished_run(directory, identity)  # another process may have finished it meanwhile
            if record is not None:
                log(f"{directory} already holds this finished run; nothing to do")
                return RunOutcome(_synset_class(spec).load(directory / SYNSET_FILE), directory, True, record)
            for stale in remove_stale_temporaries(directory):
                log(f"removed {stale.name}, left by an interrupted write")
        return _drive(spec, engine, config, identity, directory, data, dataset, torch_device, ctx, log, progress, t0,
                      checkpoint_every, eval_every, eval_runs, eval_epochs, stop_after)


def _drive(spec, engine, config, identity, directory, data, dataset, torch_device, ctx, log, progress, t0, checkpoint_every,
           eval_every, eval_runs, eval_epochs, stop_after) -> RunOutcome | None:
    """The steps of a run in its (locked) folder: resume, checkpoints, periodic evaluation, the result."""
    checkpoint = directory / CHECKPOINT_FILE
    stored = read_checkpoint(checkpoint, identity)
    if stored is not None:
        state = engine.restore(stored.tensors, stored.iteration, stored.losses)
        log(f"resuming from {checkpoint} at step {state.iteration}/{engine.total_steps}")
        before = stored.threads
        if before is not None and before != torch.get_num_threads() and torch_device.type == "cpu":
            log(f"note: this process uses {torch.get_num_threads()} CPU threads where the checkpoint's used {before}: "
                f"the result is a correct run but not bitwise the uninterrupted one (use --threads {before} for that)")
    else:
        state = engine.initial_state()
    if ctx.active:
        log(f"torchrun: {ctx.world} processes share the work of every iteration")
    if getattr(engine.config, "compile", False) and not getattr(engine, "batched", True):
        log("compiling the real-gradient pass with torch.compile (one-off, ~20 s; --no-compile to skip)")

    def keep() -> None:
        if ctx.is_main:
            save_checkpoint(checkpoint, state.named_tensors(), state.iteration, state.losses, identity)

    t1 = time.perf_counter()
    evaluations: list[dict] = []
    compile_warned = False
    bar = _progress_bar(progress and engine.total_steps > 1, engine.total_steps, state.iteration, spec.name)
    done_now, first_step = 0, 0.0
    try:
        while state.iteration < engine.total_steps:
            try:
                loss = engine.step(state)
            except FloatingPointError as exc:
                keep()
                raise DistillsetError(f"{exc}; {engine.divergence_hint}; the last good state (step {state.iteration}) is kept "
                                      f"in {checkpoint}") from None
            done_now += 1
            if done_now == 1:
                first_step = time.perf_counter() - t1  # carries torch.compile's one-off compile: reported apart
            for warning in getattr(engine, "pop_warnings", list)():
                log(f"warning: {warning}")
            if getattr(engine, "compile_error", None) and not compile_warned:
                log(f"torch.compile failed ({engine.compile_error}); continuing without it")
                compile_warned = True
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
            if state.iteration % checkpoint_every == 0 or state.iteration == engine.total_steps:
                keep()
            if eval_every and state.iteration % eval_every == 0:
                mean, std, accs = evaluate_default(spec, finish(spec, engine, state, dataset), data, eval_runs, eval_epochs,
                                                   config.seed, torch_device)
                evaluations.append({"iteration": state.iteration, "mean": mean, "std": std, "accs": accs})
                log(f"iteration {state.iteration}: {100 * mean:.2f} +- {100 * std:.2f}% ({eval_runs} runs)")
            if stop_after is not None and done_now >= stop_after and state.iteration < engine.total_steps:
                keep()
                log(f"stopped after {done_now} steps at {state.iteration}/{engine.total_steps}; run again to resume")
                return None
    finally:
        if bar is not None:
            bar.close()
    t2 = time.perf_counter()
    synset = finish(spec, engine, state, dataset)
    metrics = {"loss_per_iteration": state.losses, "evaluations": evaluations}
    if not ctx.is_main:
        ctx.barrier()  # wait until rank 0 has written the result
        return RunOutcome(synset, directory, False, {})
    steady = (t2 - t1 - first_step) / (done_now - 1) if done_now > 1 else (t2 - t1) / max(done_now, 1)
    timings = {"load_data": t1 - t0, "method": t2 - t1, "first_iteration": first_step if done_now else None,
               "seconds_per_iteration": steady, "processes": ctx.world}
    outcome = write_run(synset, directory, identity, timings, log, metrics, torch_device)
    checkpoint.unlink(missing_ok=True)
    ctx.barrier()
    return outcome


def _synset_class(spec: MethodSpec):
    if spec.modality == "graph":
        from .graph.synset import GraphSynSet

        return GraphSynSet
    return SynSet


def run_condense(method: str, dataset: str, ipc: int, out: str | os.PathLike, model: str = "convnet",
                 iterations: int | None = None, seed: int = 0, options: dict | None = None, **run_options: Any) -> RunOutcome | None:
    """An image condensation method into ``out`` (the shape of ``distillset condense``); see :func:`run_method`."""
    merged = {**(options or {}), "ipc": ipc, "model": model, "seed": seed}
    if iterations is not None:
        merged["iterations"] = iterations
    return run_method(method, dataset, out, merged, kind="condensation", **run_options)


def run_coreset(method: str, dataset: str, ipc: int | None, out: str | os.PathLike, seed: int = 0, ratio: float | None = None,
                method_options: dict | None = None, feature_model: str | None = None, feature_epochs: int | None = None,
                **run_options: Any) -> RunOutcome:
    """An image selection method into ``out`` (the shape of ``distillset coreset``); see :func:`run_method`.
    ``feature_model``/``feature_epochs`` apply to the methods that rank by a trained network's embeddings
    (as in :func:`make_coreset`)."""
    options = {**(method_options or {}), "ipc": ipc, "ratio": ratio, "seed": seed}
    fields = method_for(method, dataset, "selection").config_class.__dataclass_fields__
    for name, value in zip(FEATURE_OPTIONS, (feature_model, feature_epochs)):
        if value is not None and name in fields:
            options[name] = value
    return run_method(method, dataset, out, options, kind="selection", **run_options)


def _progress_bar(enabled: bool, total: int, initial: int, method: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=method, unit="it", dynamic_ncols=True)
