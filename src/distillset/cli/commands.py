"""The commands: each parses what argparse gave it, calls the library, prints. No domain logic lives here."""

from __future__ import annotations

import json
import sys

from ..errors import DistillsetError


def _log(message: str) -> None:
    from ..distributed import context

    if context().is_main:  # under torchrun only rank 0 speaks
        print(message, file=sys.stderr, flush=True)


def _method_options(args, spec) -> dict:
    """The method's options: the --config YAML, then every flag that was given (flags win). A flag the method
    has no option for is refused, never silently dropped."""
    from ..driver import read_options_file

    options = read_options_file(getattr(args, "config", None))
    fields = spec.config_class.__dataclass_fields__
    for dest in METHOD_FLAGS:
        value = getattr(args, dest, None)
        if value is None:
            continue
        name = dest
        if dest == "model" and spec.modality == "graph":
            name, value = "matching_model", value.lower()
        if name not in fields:
            raise DistillsetError(_not_an_option(dest, spec))
        options[name] = value
    if spec.kind == "selection" and spec.modality == "image":
        if options.get("ipc") is None and options.get("ratio") is None:
            raise DistillsetError(f"--method {spec.name} needs --ipc or --ratio")
    elif options.get(spec.size) is None:
        what = "images per class" if spec.size == "ipc" else "fraction of the labelled training nodes kept, e.g. 0.5"
        raise DistillsetError(f"--method {spec.name} on '{args.dataset}' needs --{spec.size} ({what})")
    return options


# flags that set method options (their argparse dests equal the config fields, except --model on graphs)
METHOD_FLAGS = ("ipc", "ratio", "reduction", "seed", "model", "iterations", "epochs", "init", "distance", "lr_img", "compile",
                "experts_dir", "syn_steps", "expert_epochs", "max_start_epoch", "memory", "trajectories", "guide_models",
                "guide_weight", "guide_per_iteration", "fanout", "ot_weight", "bins", "patch_drop", "patch_size",
                "feature_model", "feature_epochs", "never_learned")


def _not_an_option(dest: str, spec) -> str:
    """Why a flag was refused, and which methods do take it."""
    from ..catalogue import list_methods

    flag = "--" + dest.replace("_", "-")
    takers = sorted({s.name for s in list_methods() if dest in s.config_class.__dataclass_fields__})
    where = f"; it applies to --method {', '.join(takers)}" if takers else ""
    return f"{flag} does not apply to --method {spec.name} ({spec.modality} {spec.kind}){where}"


def _run(args, kind: str) -> int:
    from ..driver import method_for, run_method

    spec = method_for(args.method, args.dataset, kind)
    options = _method_options(args, spec)
    try:
        run_method(spec.name, args.dataset, args.out, options, kind=kind, data_root=args.data_root, device=args.device,
                   download=args.download, verify=args.verify, image_size=getattr(args, "image_size", None),
                   checkpoint_every=getattr(args, "checkpoint_every", 10), eval_every=getattr(args, "eval_every", 0),
                   eval_runs=getattr(args, "eval_runs", 2), eval_epochs=getattr(args, "eval_epochs", None),
                   progress=getattr(args, "progress", False), log=_log)
    except DistillsetError as exc:
        raise DistillsetError(_with_flags(str(exc))) from None
    return 0


def _with_flags(message: str) -> str:
    """Name the command-line flag beside a config option the message names: option 'lr_img' (--lr-img)."""
    for dest in METHOD_FLAGS:
        message = message.replace(f"option '{dest}'", f"option '{dest}' (--{dest.replace('_', '-')})")
    return message


def cmd_condense(args) -> int:
    return _run(args, "condensation")


def cmd_coreset(args) -> int:
    return _run(args, "selection")


def cmd_methods(args) -> int:
    from ..catalogue import describe_methods

    print(describe_methods())
    return 0


def cmd_experts(args) -> int:
    from ..methods.experts import ExpertConfig, train_experts

    config = ExpertConfig(model=args.model, experts=args.experts, epochs=args.epochs, lr=args.lr, momentum=args.momentum,
                          batch_size=args.batch_size, dsa=args.dsa, zca=args.zca, optimizer=args.optimizer, rho=args.rho,
                          alpha=args.alpha, seed=args.seed)
    index = train_experts(args.dataset, args.out, config, data_root=args.data_root, device=args.device,
                          download=args.download, verify=args.verify, parallel=args.parallel, log=_log)
    accuracies = [e["test_accuracy"] for e in index["experts"] if e["test_accuracy"] is not None]
    if accuracies:
        _log(f"{len(accuracies)} experts in {args.out}; final test accuracy {100 * min(accuracies):.2f}-{100 * max(accuracies):.2f}%")
    return 0


def cmd_continual(args) -> int:
    from ..applications.continual import ContinualConfig, markdown_table, run_continual

    memories = [m.strip() for m in args.memory.split(",") if m.strip()]
    if not memories:
        raise DistillsetError("--memory is empty; give methods such as random,herding,dc")
    config = ContinualConfig(dataset=args.dataset, steps=args.steps, ipc=args.ipc, memories=memories, orders=args.orders,
                             model=args.model, epochs=args.epochs, runs=args.runs, iterations=args.iterations, init=args.init,
                             seed=args.seed)
    results = run_continual(config, args.out, data_root=args.data_root, device=args.device, log=_log,
                            only_orders=args.only_orders)
    print(markdown_table(results))
    return 0


def cmd_nas(args) -> int:
    from ..applications.nas import NASConfig, report, run_nas

    config = NASConfig(dataset=args.dataset, space=args.space, proxy=args.proxy, ipc=args.ipc, proxy_epochs=args.proxy_epochs,
                       reference_epochs=args.reference_epochs, final_epochs=args.final_epochs, seed=args.seed)
    for name in ("proxy_epochs", "reference_epochs", "final_epochs"):
        if getattr(config, name) <= 0:
            raise DistillsetError(f"--{name.replace('_', '-')} must be positive")
    result = run_nas(config, args.out, data_root=args.data_root, device=args.device, log=_log)
    print(json.dumps(result) if args.json else report(result))
    return 0


def cmd_train_pool(args) -> int:
    from ..methods.guidance import PoolConfig, train_pool

    try:
        config = PoolConfig(models=[m.strip() for m in args.models.split(",") if m.strip()],
                            seeds=[int(v) for v in args.seeds.split(",") if v.strip()],
                            epochs=[int(v) for v in args.epochs.split(",") if v.strip()])
    except ValueError:
        raise DistillsetError("--seeds and --epochs take comma-separated integers") from None
    index = train_pool(args.dataset, args.out, config, data_root=args.data_root, device=args.device, log=_log)
    _log(f"{len(index['members'])} members in {args.out}")
    return 0


def cmd_evaluate(args) -> int:
    from ..evaluation import evaluate_file, format_table

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise DistillsetError("--models is empty; give names such as convnet,mlp")
    from ..synset import read_safetensors

    if read_safetensors(args.synset)[1].get("format") == "distillset.graphsynset/1":
        from .graph import evaluate_graph_file

        return evaluate_graph_file(args, models)
    if args.edge_threshold or args.dropout is not None:
        raise DistillsetError("--edge-threshold and --dropout apply to graph SynSets; this is an image SynSet")
    from ..driver import declared_evaluation

    from ..evaluation.choice import parse_grid

    grids = {"lr": parse_grid(args.lr_grid, "--lr-grid"), "epochs": parse_grid(args.epochs_grid, "--epochs-grid", int),
             "temperature": parse_grid(args.temperature_grid, "--temperature-grid")}
    results = evaluate_file(args.synset, models, runs=args.runs, epochs=args.epochs, lr=args.lr, seed=args.seed,
                            data_root=args.data_root, device=args.device, download=args.download, verify=args.verify,
                            strategy=args.strategy, augment=args.augment, batch_size=args.batch_size,
                            evaluation=declared_evaluation(args.synset), log=None if args.json else _log, labels=args.labels,
                            teacher=args.teacher, temperature=args.temperature, val_fraction=args.val_fraction, grids=grids,
                            val_runs=args.val_runs, schedule=args.lr_schedule, compile=args.compile)
    from ..distributed import context

    if not context().is_main:
        return 0
    if args.json:
        print(json.dumps(results.as_dict()))
    else:
        print(format_table(results))
    return 0


def cmd_score(args) -> int:
    from ..evaluation.score import Scorer, score_table

    scorer = Scorer(model=args.model, runs=args.runs, seed=args.seed, data_root=args.data_root, device=args.device,
                    teacher=args.teacher, temperature=args.temperature, full_epochs=args.full_epochs,
                    full_runs=args.full_runs, full=args.full, log=None if args.json else _log, epochs=args.epochs)
    from ..driver import declared_evaluation

    scores = [scorer.score(path, declared_evaluation(path)) for path in args.synsets]
    if args.json:
        print(json.dumps(scores[0] if args.command == "score" else scores))
    else:
        print(score_table(scores))
    return 0


def cmd_import(args) -> int:
    from ..importers import import_set

    synset = import_set(args.file, args.source, args.dataset, labels_file=args.labels_file, lr_file=args.lr_file,
                        index=args.index, method=args.method, zca=args.zca, adjacency_file=args.adjacency_file,
                        data_root=args.data_root)
    synset.save(args.out)
    what = "nodes" if args.source == "gcond" else "images"
    _log(f"wrote {args.out}: {len(synset)} {what} of {synset.dataset} from {args.source} ({args.file})")
    return 0


def cmd_show(args) -> int:
    from ..synset import SynSet
    from ..visualize import export_image_folder, save_grid

    synset = SynSet.load(args.synset)
    save_grid(synset, args.out, args.max_per_class)
    _log(f"wrote {args.out}")
    if args.folder:
        export_image_folder(synset, args.folder)
        _log(f"wrote {len(synset)} images below {args.folder}")
    return 0


def cmd_experiment(args) -> int:
    from ..experiment import load_experiment, run_experiment

    print(run_experiment(load_experiment(args.config), out=args.out, device=args.device, data_root=args.data_root, log=_log))
    return 0


def cmd_demo(args) -> int:
    from ..demo import run_demo

    print(run_demo(args.out, runs=args.runs, epochs=args.epochs, device=args.device, seed=args.seed,
                   dc_iterations=args.dc_iterations, log=_log))
    return 0
