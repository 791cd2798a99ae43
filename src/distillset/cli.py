"""The ``distillset`` command line (DESIGN.md contract). It parses, calls the library, prints.

User errors (DistillsetError) become one line on stderr and exit code 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from . import __version__
from .errors import DistillsetError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not value >= 0 or value == float("inf"):  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _image_size(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.replace("x", ",").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H or H,W, got '{text}'") from None
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected H or H,W with positive sizes, got '{text}'")
    return (parts[0], parts[-1])


def _index_list(text: str) -> list[int]:
    """'0,2' -> [0, 2]: indices from 0; the command checks they are in range."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected indices such as 0,2, got '{text}'") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected indices from 0, such as 0,2, got '{text}'")
    return sorted(set(values))


def _iterations(text: str) -> int | dict:
    """'200' or 'dc=200,dm=2000'."""
    try:
        if "=" not in text:
            value = int(text)
            if value < 1:
                raise ValueError
            return value
        pairs = dict(part.split("=", 1) for part in text.split(",") if part)
        out = {k.strip(): int(v) for k, v in pairs.items()}
        if any(v < 1 for v in out.values()):
            raise ValueError
        return out
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or METHOD=N,METHOD=N with positive N, got '{text}'") from None


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="folder holding the datasets (default: $DISTILLSET_DATA, else ~/.cache/distillset)")
    p.add_argument("--download", action="store_true", help="fetch missing dataset files (checksums verified)")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip the md5 check of dataset files")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--seed", type=int, default=0, help="the one seed that controls every random choice (default 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distillset", description="Dataset distillation: condense a training set into a tiny synthetic one.")
    parser.add_argument("--version", action="version", version=f"distillset {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("coreset", help="select real images per class (random, ...)")
    p.add_argument("--method", required=True, help="coreset method: random, herding, kcenter, forgetting, dq")
    p.add_argument("--dataset", required=True, help="registry name, imagefolder:PATH or npz:PATH")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--ipc", type=_positive_int, help="images per class")
    size.add_argument("--ratio", type=float, help="fraction of the training set to keep, class-balanced (e.g. 0.01)")
    size.add_argument("--reduction", type=float, help="graphs: fraction of the labelled training nodes kept (e.g. 0.5)")
    p.add_argument("--bins", type=_positive_int, help="dq: GraphCut bins per class (default 10)")
    p.add_argument("--patch-drop", type=float, help="dq: fraction of least salient patches dropped and filled (default 0)")
    p.add_argument("--patch-size", type=_positive_int, help="dq: patch side in pixels (default 4)")
    p.add_argument("--image-size", type=_image_size, help="resize image-folder data to H or H,W")
    p.add_argument("--out", required=True, help="output directory (resumes / recognises a finished run)")
    p.add_argument("--feature-model", default="convnet", help="network trained on the real data for herding/kcenter/forgetting")
    p.add_argument("--feature-epochs", type=_positive_int, default=3, help="its training epochs (default 3; cached)")
    _add_data_options(p)

    p = sub.add_parser("graph-report", help="accuracy and Laplacian Energy Distribution shift of a condensed graph")
    p.add_argument("synset", help="a graph SynSet file")
    p.add_argument("--models", default="gcn", help="GNNs to evaluate (default gcn): gcn, sgc, appnp, cheby, sage, mlp")
    p.add_argument("--runs", type=_positive_int, default=5)
    p.add_argument("--epochs", type=_positive_int, default=600)
    p.add_argument("--plot", help="also write the two energy distributions to this PNG")
    p.add_argument("--link-prediction", action="store_true",
                   help="also score held-out real edges with a GCN trained on the condensed graph (ROC-AUC)")
    p.add_argument("--json", action="store_true")
    _add_data_options(p)

    p = sub.add_parser("experts", help="train expert trajectories on real data for mtt/datm (parameters after every epoch)")
    p.add_argument("--dataset", required=True, help="registry name, imagefolder:PATH or npz:PATH")
    p.add_argument("--model", default="convnet", help="expert network (default convnet)")
    p.add_argument("--experts", type=_positive_int, default=10, help="number of experts (default 10; the paper used 100)")
    p.add_argument("--epochs", type=_positive_int, default=50, help="epochs per expert (default 50)")
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (default 0.01, no momentum as in MTT)")
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--batch-size", type=_positive_int, default=256)
    p.add_argument("--no-dsa", dest="dsa", action="store_false", help="train without DSA augmentation")
    p.add_argument("--zca", action="store_true", help="train on ZCA-whitened data (eps 0.1); distillation then uses it too")
    p.add_argument("--parallel", type=_positive_int, help="experts trained at once as one vmapped network (default: 8 on CUDA, 1 on CPU)")
    p.add_argument("--out", required=True, help="expert folder (an interrupted run resumes from it)")
    _add_data_options(p)

    p = sub.add_parser("continual", help="class-incremental learning with a memory built by a coreset or condensation method")
    p.add_argument("--dataset", required=True, help="registry name, imagefolder:PATH or npz:PATH")
    p.add_argument("--steps", type=_positive_int, default=5, help="groups the classes arrive in (default 5)")
    p.add_argument("--ipc", type=_positive_int, default=10, help="memory images per class (default 10)")
    p.add_argument("--memory", default="random,herding,dc", help="memory method(s), comma-separated: random, herding, "
                                                                  "kcenter, forgetting, dc, dsa, dm (default random,herding,dc)")
    p.add_argument("--orders", type=_positive_int, default=3, help="class orders (default 3; order 0 is the natural one)")
    p.add_argument("--only-orders", type=_index_list, metavar="I,J",
                   help="run only these order indices (from 0), to split one run over processes; join their --out "
                        "folders with benchmarks/continual_table.py --merge")
    p.add_argument("--model", default="convnet")
    p.add_argument("--epochs", type=_positive_int, default=300, help="training epochs of the fresh network per step")
    p.add_argument("--runs", type=_positive_int, default=1, help="fresh networks per step (default 1)")
    p.add_argument("--iterations", type=_iterations,
                   help="condensation iterations per step: N, or per method as dc=200,dm=2000 (default: each method's)")
    p.add_argument("--init", choices=("real", "noise"),
                   help="start condensed memories from real images or noise (default: each method's; DC's is noise)")
    p.add_argument("--out", required=True, help="output directory (results.json, results.md, continual.png; resumes)")
    _add_data_options(p)

    p = sub.add_parser("nas", help="neural architecture search on a proxy set, ranked against whole-data training")
    p.add_argument("--dataset", required=True, help="registry name, imagefolder:PATH or npz:PATH")
    p.add_argument("--proxy", default="random", help="a SynSet file, 'random' (--ipc per class) or 'whole' (default random)")
    p.add_argument("--space", default="small", help="search space: small (24), medium (96) or paper (720)")
    p.add_argument("--ipc", type=_positive_int, default=10, help="images per class of the random proxy (default 10)")
    p.add_argument("--proxy-epochs", type=float, default=300, help="epochs on the proxy; with 'whole', a fraction stops early")
    p.add_argument("--reference-epochs", type=float, default=2, help="epochs of the whole-data reference (default 2)")
    p.add_argument("--final-epochs", type=float, default=2, help="retraining epochs of the chosen candidate (default 2)")
    p.add_argument("--out", required=True, help="output folder (the reference ranking is cached there for every proxy)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_data_options(p)

    p = sub.add_parser("train-pool", help="train a pool of networks on real data (seeds x models x checkpoint epochs) for --guide-models")
    p.add_argument("--dataset", required=True, help="registry name, imagefolder:PATH or npz:PATH")
    p.add_argument("--models", default="convnet", help="comma-separated model names (default convnet)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--epochs", default="1,5", help="checkpoint epochs kept, comma-separated (default 1,5)")
    p.add_argument("--out", required=True, help="pool folder (resumes member by member)")
    _add_data_options(p)

    p = sub.add_parser("condense", help="learn a synthetic set: dc (gradient matching), dsa (with siamese augmentation), "
                                        "dm (distribution matching), mtt/datm (trajectory matching), dd (bi-level)")
    p.add_argument("--method", required=True, help="dc, dsa, dm, mtt, datm or dd; on graphs gcond, gcond-x or sgdd")
    p.add_argument("--dataset", required=True, help="registry name, imagefolder:PATH or npz:PATH; graphs: cora, citeseer, ...")
    p.add_argument("--ipc", type=_positive_int, help="images per class (image methods)")
    p.add_argument("--reduction", type=float, help="graph methods: fraction of the labelled training nodes kept (e.g. 0.5)")
    p.add_argument("--epochs", type=_positive_int, help="graph methods: condensation epochs (default 600)")
    p.add_argument("--model", default="convnet", help="training network (any zoo model; default convnet); graphs: the "
                                                      "matching GNN, sgc (default) or gcn")
    p.add_argument("--fanout", type=_positive_int, help="graph methods with --model gcn: real neighbours sampled per node "
                                                        "and hop (default: all, exact; for large graphs)")
    p.add_argument("--ot-weight", type=_non_negative_float, help="sgdd: weight of the optimal-transport term that pulls the "
                                                                 "synthetic graph's Laplacian energy distribution toward the "
                                                                 "original's (default 10; 0 switches it off)")
    p.add_argument("--iterations", type=_positive_int,
                   help="iterations (default as in the papers: 1000 for dc/dsa/dd, 20000 for dm, 5000 for mtt/datm)")
    p.add_argument("--init", choices=("noise", "real", "correct"),
                   help="initial images (default: noise for dc/dd, real for dsa/dm/mtt; datm: real ones the experts classify correctly)")
    p.add_argument("--distance", choices=("ours", "mse", "cos"), help="gradient distance (default ours)")
    p.add_argument("--lr-img", type=float, help="image learning rate (dc/dsa: 0.1, 0.01 with an MLP; dm: 1)")
    p.add_argument("--no-compile", dest="compile", action="store_false", default=None,
                   help="do not torch.compile the real-gradient pass (compiling costs ~20 s once, then steps run ~1.8x faster on CPU)")
    p.add_argument("--experts-dir", help="mtt/datm: the expert trajectories (made by `distillset experts`)")
    p.add_argument("--syn-steps", type=_positive_int, help="mtt/datm: student steps per iteration (default 20)")
    p.add_argument("--expert-epochs", type=_positive_int, help="mtt/datm: expert epochs matched (default 2)")
    p.add_argument("--max-start-epoch", type=_positive_int, help="mtt/datm: start epochs are drawn below this (default 10)")
    p.add_argument("--trajectories", type=_positive_int,
                   help="mtt/datm: expert trajectories averaged per iteration (default 1; split across torchrun ranks)")
    p.add_argument("--guide-models", help="dc/dsa/dm: pre-trained guides, pool folders or member files, comma-separated; "
                                         "filter a pool with DIR:model=convnet|lenet;epoch=1 (made by `distillset train-pool`)")
    p.add_argument("--guide-weight", type=float, help="weight of the guides' cross-entropy (default 1)")
    p.add_argument("--guide-per-iteration", type=_positive_int, help="pool members sampled per iteration (default 1)")
    p.add_argument("--memory", choices=("plain", "checkpointed"),
                   help="mtt/datm/dd: 'checkpointed' recomputes each unrolled step so memory does not grow with steps")
    p.add_argument("--config", help="YAML file of method options (command-line flags win)")
    p.add_argument("--checkpoint-every", type=_positive_int, default=10, help="iterations between checkpoints (default 10)")
    p.add_argument("--eval-every", type=int, default=0, help="evaluate the set every N iterations (default never)")
    p.add_argument("--eval-runs", type=_positive_int, default=2, help="fresh networks per periodic evaluation")
    p.add_argument("--eval-epochs", type=_positive_int, default=300, help="their training epochs")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--out", required=True, help="output directory (an interrupted run resumes from it)")
    _add_data_options(p)

    p = sub.add_parser("evaluate", help="train fresh networks on a SynSet and test them on real data")
    p.add_argument("synset", help="a .safetensors SynSet file")
    p.add_argument("--models", default="convnet", help="comma-separated model names (default convnet)")
    p.add_argument("--runs", type=_positive_int, default=5, help="fresh networks per model (default 5)")
    p.add_argument("--epochs", type=_positive_int, help="training epochs (default 300)")
    p.add_argument("--lr", type=float, help="training lr (default: the SynSet's learned lr, else 0.01)")
    p.add_argument("--dsa", action="store_true", help="train with DSA augmentation (per image; default epochs 1000)")
    p.add_argument("--strategy", choices=("auto", "sequential", "batched"), default="auto",
                   help="train the runs one by one, or all at once with vmap (auto: batched on CUDA only)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    _add_data_options(p)

    p = sub.add_parser("show", help="write a SynSet as a PNG grid (one row per class) or an image folder")
    p.add_argument("synset")
    p.add_argument("--out", default="grid.png", help="PNG file to write (default grid.png)")
    p.add_argument("--folder", help="also export DIR/<class>/<n>.png")
    p.add_argument("--max-per-class", type=_positive_int, default=20)

    p = sub.add_parser("experiment", help="run a grid of methods x datasets x ipc x seeds from a YAML file; write a table")
    p.add_argument("config", help="experiment YAML (see configs/)")
    p.add_argument("--out", help="output directory (default: the config's out, else runs/experiments/NAME)")
    p.add_argument("--data-root")
    p.add_argument("--device", default="cpu")

    p = sub.add_parser("demo", help="the embedded default: digits, DC vs random coresets, evaluation")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--runs", type=_positive_int, default=3)
    p.add_argument("--epochs", type=_positive_int, default=300)
    p.add_argument("--dc-iterations", type=int, default=100,
                   help="iterations of the DC row at 1 image per class (default 100; 0 leaves it out)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    return parser


def _log(message: str) -> None:
    from .distributed import context

    if context().is_main:  # under torchrun only rank 0 speaks
        print(message, file=sys.stderr, flush=True)


def cmd_coreset(args) -> int:
    from .runner import run_coreset

    from .graph.data import is_graph_dataset

    if is_graph_dataset(args.dataset) or args.reduction is not None:
        return _graph_coreset(args)
    method_options = {k: getattr(args, k) for k in ("bins", "patch_drop", "patch_size") if getattr(args, k) is not None}
    run_coreset(args.method, args.dataset, args.ipc, args.out, seed=args.seed, data_root=args.data_root,
                device=args.device, download=args.download, verify=args.verify, image_size=args.image_size,
                feature_model=args.feature_model, feature_epochs=args.feature_epochs, ratio=args.ratio,
                method_options=method_options, log=_log)
    return 0


def cmd_condense(args) -> int:
    from .condense import METHODS, load_yaml_config, run_condense
    from .graph.data import is_graph_dataset
    from .methods.gradient_matching import GradientMatchingConfig

    if args.method in ("gcond", "gcond-x", "sgdd") or is_graph_dataset(args.dataset):
        return _condense_graph(args)
    graph_only = [flag for flag, value in (("--reduction", args.reduction), ("--fanout", args.fanout), ("--ot-weight", args.ot_weight))
                  if value is not None]
    if graph_only:
        raise DistillsetError(f"{', '.join(graph_only)} only apply to graph condensation (gcond, gcond-x, sgdd); "
                              f"--method {args.method} condenses images")
    if args.ipc is None:
        raise DistillsetError(f"--method {args.method} needs --ipc (images per class)")

    options = load_yaml_config(args.config, METHODS.get(args.method, (GradientMatchingConfig,))[0])
    for key in ("init", "distance", "lr_img", "compile", "experts_dir", "syn_steps", "expert_epochs", "max_start_epoch", "memory",
                "trajectories", "guide_models", "guide_weight", "guide_per_iteration"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    iterations = args.iterations if args.iterations is not None else options.pop("iterations", None)
    model = options.pop("model", args.model)
    if args.model != "convnet":
        model = args.model
    options.pop("ipc", None), options.pop("seed", None)
    run_condense(args.method, args.dataset, args.ipc, args.out, model=model, iterations=iterations, seed=args.seed,
                 data_root=args.data_root, device=args.device, download=args.download, verify=args.verify,
                 options=options, checkpoint_every=args.checkpoint_every, eval_every=args.eval_every,
                 eval_runs=args.eval_runs, eval_epochs=args.eval_epochs, progress=args.progress, log=_log)
    return 0


def _graph_coreset(args) -> int:
    from .graph.coresets import select_nodes
    from .graph.data import is_graph_dataset, load_graph

    if not is_graph_dataset(args.dataset):
        raise DistillsetError(f"--reduction selects graph nodes; '{args.dataset}' is not a graph dataset (use --ipc or --ratio)")
    if args.reduction is None:
        raise DistillsetError(f"'{args.dataset}' is a graph: give --reduction (fraction of labelled training nodes)")
    from pathlib import Path

    synset = select_nodes(args.method, load_graph(args.dataset, args.data_root), args.reduction, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    synset.save(out / "synset.safetensors")
    _log(f"wrote {out / 'synset.safetensors'} ({len(synset)} nodes, {int((synset.adjacency > 0).sum()) // 2} edges)")
    return 0


def cmd_graph_report(args) -> int:
    from .graph.data import load_graph
    from .graph.evaluate import evaluate_graph
    from .graph.led import energy_distribution, graph_led, led_shift, plot_distributions
    from .graph.synset import GraphSynSet

    synset = GraphSynSet.load(args.synset)
    data = load_graph(synset.dataset, args.data_root)
    original = graph_led(data)
    condensed = energy_distribution(synset.features, synset.adjacency)
    shift = led_shift(original, condensed)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    results = evaluate_graph(synset, data, models, runs=args.runs, epochs=args.epochs, seed=args.seed, device=args.device)
    report = {"dataset": synset.dataset, "method": synset.method, "nodes": len(synset), "led_shift": shift,
              "led_mean_eigenvalue": {"original": original.mean_eigenvalue, "condensed": condensed.mean_eigenvalue},
              "results": {m: r.as_dict() for m, r in results.items()}}
    if args.link_prediction:
        from .graph.tasks import link_prediction_auc

        report["link_prediction_auc"] = link_prediction_auc(synset, data, seed=args.seed)
        report["link_prediction_auc_whole_graph"] = link_prediction_auc(None, data, seed=args.seed)
    if args.plot:
        plot_distributions({f"{synset.dataset} (whole graph)": original, f"{synset.method} ({len(synset)} nodes)": condensed}, args.plot)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{args.synset}: {synset.method} on {synset.dataset}, {len(synset)} nodes, reduction {synset.reduction:g}")
    print(f"LED shift (1-Wasserstein on the eigenvalue axis): {shift:.4f}; mean eigenvalue of the feature energy "
          f"{original.mean_eigenvalue:.3f} (whole graph) vs {condensed.mean_eigenvalue:.3f} (condensed)")
    for m, r in results.items():
        print(f"{m}: {100 * r.mean:.2f} +- {100 * r.std:.2f} ({len(r.accs)} runs, selected on the real validation split)")
    if args.link_prediction:
        print(f"link prediction ROC-AUC: {report['link_prediction_auc']:.4f} (trained on the whole graph: "
              f"{report['link_prediction_auc_whole_graph']:.4f})")
    if args.plot:
        print(f"plot: {args.plot}")
    return 0


def _condense_graph(args) -> int:
    from .graph.data import is_graph_dataset
    from .graph.gcond import run_gcond

    if args.method not in ("gcond", "gcond-x", "sgdd"):
        raise DistillsetError(f"'{args.dataset}' is a graph; condense it with --method gcond, gcond-x or sgdd, not {args.method}")
    if not is_graph_dataset(args.dataset):
        raise DistillsetError(f"--method {args.method} condenses graphs; '{args.dataset}' is not a graph dataset (cora, citeseer, ...)")
    if args.reduction is None:
        raise DistillsetError(f"--method {args.method} needs --reduction (fraction of labelled training nodes, e.g. 0.5)")
    matching = "sgc" if args.model == "convnet" else args.model.lower()  # convnet is the image default: not a GNN
    if matching not in ("sgc", "gcn"):
        raise DistillsetError(f"graph condensation matches gradients of an sgc or gcn network, not '{args.model}' (--model sgc|gcn)")
    if args.fanout is not None and matching != "gcn":
        raise DistillsetError("--fanout samples the neighbourhoods a GCN reads; SGC needs none (its propagation is computed "
                              "once): add --model gcn or drop --fanout")
    options = {"matching_model": matching, "fanout": args.fanout or 0}
    if args.ot_weight is not None:
        if args.method != "sgdd":
            raise DistillsetError(f"--ot-weight weighs SGDD's structure term; --method {args.method} has none (use --method sgdd)")
        options["ot_weight"] = args.ot_weight
    run_gcond(args.method, args.dataset, args.reduction, args.out, epochs=args.epochs, seed=args.seed, data_root=args.data_root,
              device=args.device, checkpoint_every=args.checkpoint_every, log=_log, options=options)
    return 0


def _evaluate_graph(args, models: list[str]) -> int:
    from .graph.data import load_graph
    from .graph.evaluate import evaluate_graph
    from .graph.synset import GraphSynSet

    synset = GraphSynSet.load(args.synset)
    models = ["gcn" if m == "convnet" else m for m in models]  # the image default means the graph default
    data = load_graph(synset.dataset, args.data_root)
    results = evaluate_graph(synset, data, models, runs=args.runs, epochs=args.epochs or 600, seed=args.seed, device=args.device)
    payload = {"dataset": synset.dataset, "results": {m: r.as_dict() for m, r in results.items()}}
    if args.json:
        print(json.dumps(payload))
    else:
        print(f"| model | test accuracy (%) | runs | dataset {synset.dataset}, {len(synset)} synthetic nodes |\n|---|---|---|---|")
        for m, r in results.items():
            print(f"| {m} | {100 * r.mean:.2f} +- {100 * r.std:.2f} | {len(r.accs)} | |")
    return 0


def cmd_experts(args) -> int:
    from .methods.experts import ExpertConfig, train_experts

    config = ExpertConfig(model=args.model, experts=args.experts, epochs=args.epochs, lr=args.lr, momentum=args.momentum,
                          batch_size=args.batch_size, dsa=args.dsa, zca=args.zca, seed=args.seed)
    index = train_experts(args.dataset, args.out, config, data_root=args.data_root, device=args.device,
                          download=args.download, verify=args.verify, parallel=args.parallel, log=_log)
    accuracies = [e["test_accuracy"] for e in index["experts"] if e["test_accuracy"] is not None]
    if accuracies:
        _log(f"{len(accuracies)} experts in {args.out}; final test accuracy {100 * min(accuracies):.2f}-{100 * max(accuracies):.2f}%")
    return 0


def cmd_continual(args) -> int:
    from .evaluation.continual import ContinualConfig, markdown_table, run_continual

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
    from .evaluation.nas import NASConfig, report, run_nas

    config = NASConfig(dataset=args.dataset, space=args.space, proxy=args.proxy, ipc=args.ipc, proxy_epochs=args.proxy_epochs,
                       reference_epochs=args.reference_epochs, final_epochs=args.final_epochs, seed=args.seed)
    for name in ("proxy_epochs", "reference_epochs", "final_epochs"):
        if getattr(config, name) <= 0:
            raise DistillsetError(f"--{name.replace('_', '-')} must be positive")
    result = run_nas(config, args.out, data_root=args.data_root, device=args.device, log=_log)
    print(json.dumps(result) if args.json else report(result))
    return 0


def cmd_train_pool(args) -> int:
    from .methods.guidance import PoolConfig, train_pool

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
    from .evaluation import format_table
    from .runner import evaluate_file

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise DistillsetError("--models is empty; give names such as convnet,mlp")
    from .synset import read_safetensors

    if read_safetensors(args.synset)[1].get("format") == "distillset.graphsynset/1":
        return _evaluate_graph(args, models)
    results = evaluate_file(args.synset, models, runs=args.runs, epochs=args.epochs, lr=args.lr, seed=args.seed,
                            data_root=args.data_root, device=args.device, download=args.download,
                            verify=args.verify, strategy=args.strategy, dsa=args.dsa, log=None if args.json else _log)
    from .distributed import context

    if not context().is_main:
        return 0
    if args.json:
        print(json.dumps(results.as_dict()))
    else:
        print(format_table(results))
    return 0


def cmd_show(args) -> int:
    from .synset import SynSet
    from .visualize import export_image_folder, save_grid

    synset = SynSet.load(args.synset)
    save_grid(synset, args.out, args.max_per_class)
    _log(f"wrote {args.out}")
    if args.folder:
        export_image_folder(synset, args.folder)
        _log(f"wrote {len(synset)} images below {args.folder}")
    return 0


def cmd_experiment(args) -> int:
    from .experiment import load_experiment, run_experiment

    print(run_experiment(load_experiment(args.config), out=args.out, device=args.device, data_root=args.data_root, log=_log))
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    print(run_demo(args.out, runs=args.runs, epochs=args.epochs, device=args.device, seed=args.seed,
                   dc_iterations=args.dc_iterations, log=_log))
    return 0


DISTRIBUTED_COMMANDS = ("condense", "evaluate")
COMMANDS = {"coreset": cmd_coreset, "experts": cmd_experts, "continual": cmd_continual, "nas": cmd_nas,
            "train-pool": cmd_train_pool, "graph-report": cmd_graph_report, "condense": cmd_condense, "evaluate": cmd_evaluate, "show": cmd_show,
            "experiment": cmd_experiment, "demo": cmd_demo}


def main(argv: Sequence[str] | None = None, leave_group_open: bool = False) -> int:
    """Run one command; returns its exit status. ``leave_group_open`` (for :func:`entry` only): under
    torchrun, a command that succeeded returns with its process group still up, for the caller to exit at once."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from . import distributed

    keep_group = False
    try:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            if args.command not in DISTRIBUTED_COMMANDS:
                raise DistillsetError(f"'{args.command}' does not run under torchrun; launch it as one process "
                                      f"(distributed: {', '.join(DISTRIBUTED_COMMANDS)})")
            distributed.init_from_environment(args.device)
        status = COMMANDS[args.command](args)
        # Every rank reaches here before any tears the group down, so no rank leaves while a peer's last
        # collective is in flight.
        distributed.context().barrier()
        keep_group = leave_group_open and distributed.context().active
        return status
    except DistillsetError as exc:
        print(f"distillset: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("distillset: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        if not keep_group:
            distributed.shutdown()


def entry() -> None:
    """The `distillset` command and `python -m distillset`.

    Under torchrun a rank whose command succeeded (every rank past the final barrier, every file written
    and closed) leaves with ``os._exit`` after flushing its output, skipping the gloo group's teardown and
    the interpreter's: in CI a rank aborted there now and then ("terminate called without an active
    exception", SIGABRT, exit -6) after its work was done, barrier or not, which failed a finished run.
    """
    status = main(leave_group_open=True)
    from . import distributed

    if distributed.context().active:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    entry()
