"""Running an iterative condensation method into an output directory, resumably.

The method is a step function over a state (images, optimiser momentum, iteration). Every random
draw of iteration i comes from generators derived from (seed, i), so a run resumed from a checkpoint
continues exactly as the uninterrupted run would. Checkpoints are written atomically every
``checkpoint_every`` iterations; a NaN loss stops the run with a message and leaves the last good
checkpoint in place.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, fields
from pathlib import Path


from .data import load_dataset, real_data
from .distributed import context, local_device
from .errors import DistillsetError, unknown_name
from .evaluation import evaluate_synset
from .fileio import atomic_write, read_yaml_mapping
from .methods.dataset_distillation import DatasetDistillation, DatasetDistillationConfig
from .methods.distribution_matching import DistributionMatching, DistributionMatchingConfig
from .methods.gradient_matching import GradientMatching, GradientMatchingConfig
from .methods.image_state import MatchingState
from .methods.trajectory_matching import DATM_DEFAULTS, MTT_DEFAULTS, TrajectoryMatching, TrajectoryMatchingConfig
from .models import check_model_name
from .runner import Log, RunOutcome, finished_run, resolve_device, write_run

CHECKPOINT_FILE = "checkpoint.safetensors"
# method -> (its config class, its engine, the defaults that distinguish it)
METHODS = {
    "dc": (GradientMatchingConfig, GradientMatching, {"dsa": False, "init": "noise"}),
    "dsa": (GradientMatchingConfig, GradientMatching, {"dsa": True, "init": "real"}),
    "dm": (DistributionMatchingConfig, DistributionMatching, {}),
    "mtt": (TrajectoryMatchingConfig, lambda real, cfg: TrajectoryMatching(real, cfg, "mtt"), MTT_DEFAULTS),
    "datm": (TrajectoryMatchingConfig, lambda real, cfg: TrajectoryMatching(real, cfg, "datm"), DATM_DEFAULTS),
    "dd": (DatasetDistillationConfig, DatasetDistillation, {}),
}


def load_yaml_config(path: str | os.PathLike | None, config_class=GradientMatchingConfig) -> dict:
    """Method options from a YAML file (keys as in the method's config class); unknown keys are an error."""
    if not path:
        return {}
    return check_options(read_yaml_mapping(path, "config"), f"config {path}", config_class)


def check_options(options: dict, source: str = "options", config_class=GradientMatchingConfig) -> dict:
    """Reject unknown option names and values of the wrong type, naming the option."""
    defaults = {f.name: f.default for f in fields(config_class)}
    known = set(defaults) | {"method", "dataset"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise DistillsetError(f"{source} has unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for key, value in options.items():
        default = defaults.get(key)
        expected = float if isinstance(default, float) or key == "lr_img" else type(default) if default is not None else str
        ok = isinstance(value, expected) and not (expected in (int, float) and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if value is not None and not ok:
            raise DistillsetError(f"{source}: option '{key}' must be {expected.__name__}, got {value!r}")
    return options


def save_checkpoint(path: Path, state: MatchingState, config: dict) -> None:
    from safetensors.torch import save_file

    tensors = {"images": state.images.detach().cpu().contiguous(), "labels": state.labels.cpu()}
    if state.momentum is not None:
        tensors["momentum"] = state.momentum.detach().cpu().contiguous()
    for name, value in state.extras.items():
        tensors[f"extra.{name}"] = value.detach().cpu().contiguous()
    meta = {"iteration": str(state.iteration), "losses": json.dumps(state.losses), "config": json.dumps(config, sort_keys=True)}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_checkpoint(path: Path, config: dict, device) -> MatchingState | None:
    from .synset import read_safetensors

    if not path.is_file():
        return None
    tensors, meta = read_safetensors(path)
    if json.loads(meta.get("config", "null")) != json.loads(json.dumps(config, sort_keys=True)):
        raise DistillsetError(f"{path} is a checkpoint of a different configuration; choose another --out or delete it")
    momentum = tensors.get("momentum")
    extras = {name[len("extra."):]: value.to(device) for name, value in tensors.items() if name.startswith("extra.")}
    return MatchingState(tensors["images"].to(device), tensors["labels"].to(device),
                         momentum.to(device) if momentum is not None else None, int(meta["iteration"]), json.loads(meta["losses"]),
                         extras)


def condense_real(method: str, real, ipc: int, model: str = "convnet", iterations: int | None = None, seed: int = 0,
                  options: dict | None = None):
    """Condense in memory, without an output directory: for applications that condense many small
    problems (a class-incremental step, a NAS proxy). Returns the SynSet."""
    if method not in METHODS:
        raise unknown_name("condensation method", method, list(METHODS))
    config_class, engine_class, method_defaults = METHODS[method]
    options = check_options(dict(options or {}), config_class=config_class)
    cfg = config_class(**{**method_defaults, **options, "ipc": ipc, "model": model, "seed": seed})
    if iterations is not None:
        cfg.iterations = iterations
    engine = engine_class(real, cfg)
    state = engine.initial_state()
    while state.iteration < cfg.iterations:
        try:
            engine.step(state)
        except FloatingPointError as exc:
            raise DistillsetError(f"{method} on {real.name}: {exc}; lower the image learning rate") from None
    return engine.to_synset(state, {"method": method})


def run_condense(method: str, dataset: str, ipc: int, out: str | os.PathLike, model: str = "convnet",
                 iterations: int | None = None, seed: int = 0, data_root=None, device: str | None = "cpu",
                 download: bool = False, verify: bool = True, options: dict | None = None, checkpoint_every: int = 10,
                 eval_every: int = 0, eval_runs: int = 2, eval_epochs: int = 300, progress: bool = True,
                 stop_after: int | None = None, log: Log = print) -> RunOutcome | None:
    """Condense ``dataset`` with ``method`` into ``out``; resumes from a checkpoint there.

    ``stop_after`` ends the call after that many new iterations (checkpoint written), as an interrupted
    run would; the same call again resumes.
    """
    if method not in METHODS:
        raise unknown_name("condensation method", method, list(METHODS))
    config_class, engine_class, method_defaults = METHODS[method]
    check_model_name(model)
    options = {k: v for k, v in check_options(dict(options or {}), config_class=config_class).items()
               if k not in ("method", "dataset")}
    if iterations is not None and iterations < 1 or options.get("iterations", 1) < 1:
        raise DistillsetError("iterations must be at least 1")
    cfg = config_class(**{**method_defaults, **options, "ipc": ipc, "model": model, "seed": seed})
    if iterations is not None:
        cfg.iterations = iterations
    directory = Path(out)
    # the run's identity; whether torch.compile is used does not change what is computed
    config = {"command": "condense", "method": method, "dataset": dataset, **{k: v for k, v in asdict(cfg).items() if k != "compile"}}
    record = finished_run(directory, config)
    if record is not None:
        log(f"{directory} already holds this finished run; nothing to do")
        from .synset import SynSet

        return RunOutcome(SynSet.load(directory / "synset.safetensors"), directory, True, record)
    ctx = context()
    if not ctx.is_main:  # under torchrun only rank 0 speaks and writes
        log, progress = (lambda message: None), False
    torch_device = resolve_device(local_device(device))
    t0 = time.perf_counter()
    data = load_dataset(dataset, data_root=data_root, download=download, verify=verify)
    real = real_data(data, "train", torch_device)
    engine = engine_class(real, cfg)
    checkpoint = directory / CHECKPOINT_FILE
    state = load_checkpoint(checkpoint, config, torch_device)
    if state is not None:
        log(f"resuming from {checkpoint} at iteration {state.iteration}/{cfg.iterations}")
    else:
        state = engine.initial_state()
    if ctx.is_main:
        directory.mkdir(parents=True, exist_ok=True)
    if ctx.active:
        log(f"torchrun: {ctx.world} processes share the work of every iteration")
    if getattr(engine.config, "compile", False) and not engine.batched:
        log("compiling the real-gradient pass with torch.compile (one-off, ~20 s; --no-compile to skip)")
    t1 = time.perf_counter()
    evaluations = []
    compile_warned = False
    bar = _progress_bar(progress, cfg.iterations, state.iteration, method)
    done_now = 0
    try:
        while state.iteration < cfg.iterations:
            try:
                loss = engine.step(state)
            except FloatingPointError as exc:
                if ctx.is_main:
                    save_checkpoint(checkpoint, state, config)
                raise DistillsetError(
                    f"{exc}; likely cause: the image learning rate ({engine.config.lr_img}) is too large for this "
                    f"model and data (try --lr-img {engine.config.lr_img / 10:g}); the last good state (iteration "
                    f"{state.iteration}) is kept in {checkpoint}"
                ) from None
            done_now += 1
            for warning in getattr(engine, "pop_warnings", list)():
                log(f"warning: {warning}")
            if getattr(engine, "compile_error", None) and not compile_warned:
                log(f"torch.compile failed ({engine.compile_error}); continuing without it")
                compile_warned = True
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
            if ctx.is_main and (state.iteration % checkpoint_every == 0 or state.iteration == cfg.iterations):
                save_checkpoint(checkpoint, state, config)
            if eval_every and state.iteration % eval_every == 0:
                result = evaluate_synset(engine.to_synset(state), data.test_images, data.test_labels, runs=eval_runs,
                                         epochs=eval_epochs, seed=seed, device=torch_device).results[model]
                evaluations.append({"iteration": state.iteration, "mean": result.mean, "std": result.std, "accs": result.accs})
                log(f"iteration {state.iteration}: {100 * result.mean:.2f} +- {100 * result.std:.2f}% ({eval_runs} x {model})")
            if stop_after is not None and done_now >= stop_after and state.iteration < cfg.iterations:
                if ctx.is_main:
                    save_checkpoint(checkpoint, state, config)
                log(f"stopped after {done_now} iterations at {state.iteration}/{cfg.iterations}; run again to resume")
                return None
    finally:
        if bar is not None:
            bar.close()
    t2 = time.perf_counter()
    synset = engine.to_synset(state, {"method": method, "dataset": dataset})
    metrics = {"loss_per_iteration": state.losses, "evaluations": evaluations}
    if not ctx.is_main:
        ctx.barrier()  # wait until rank 0 has written the result
        return RunOutcome(synset, directory, False, {})
    timings = {"load_data": t1 - t0, "condense_this_call": t2 - t1, "seconds_per_iteration": (t2 - t1) / max(done_now, 1),
               "processes": ctx.world}
    outcome = write_run(synset, directory, config, timings, log, metrics)
    checkpoint.unlink(missing_ok=True)
    ctx.barrier()
    return outcome


def _progress_bar(enabled: bool, total: int, initial: int, method: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=method, unit="it", dynamic_ncols=True)
