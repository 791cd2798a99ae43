"""The ``distillset`` argument parser: commands, flags and their types. Method names and help come from the registry."""

from __future__ import annotations

import argparse

from .._version import __version__


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


def _names(kind: str) -> str:
    """The registered methods of a kind, for help texts (image ones first, then graph ones)."""
    from ..catalogue import list_methods

    image = sorted({s.name for s in list_methods(kind, "image")})
    graph = sorted({s.name for s in list_methods(kind, "graph")} - set(image))
    return ", ".join(image) + (f"; graphs also {', '.join(graph)}" if graph else "")


def _add_data_options(p: argparse.ArgumentParser, seed_default: int | None = 0) -> None:
    p.add_argument("--data-root", help="folder holding the datasets (default: $DISTILLSET_DATA, else ~/.cache/distillset)")
    p.add_argument("--download", action="store_true", help="fetch missing dataset files (checksums verified)")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip the md5 check of dataset files")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--seed", type=int, default=seed_default, help="the one seed that controls every random choice (default 0)")
    _add_deterministic(p)


def _add_deterministic(p: argparse.ArgumentParser) -> None:
    p.add_argument("--deterministic", action="store_true",
                   help="GPU: deterministic cuDNN/cuBLAS kernels, no autotuning, TF32 off (slower; README 'Reproducibility')")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="CPU threads per process (default: PyTorch's, i.e. $OMP_NUM_THREADS or the cores); CPU results "
                        "repeat bit for bit only at the same count (README 'Reproducibility')")


def _add_label_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labels", choices=("stored", "hard", "teacher"), default="stored",
                   help="stored (default): the set's soft labels when it has them; hard: class labels only; teacher: "
                        "knowledge distillation from --teacher on every augmented batch")
    p.add_argument("--teacher", help="pool folder(s) or member file(s) of `distillset train-pool` (for --labels teacher)")
    p.add_argument("--temperature", type=float, default=1.0, help="distillation temperature (--labels teacher; default 1)")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag ends like every other bad input: one line naming it, exit code 2 (no usage dump;
    ``--help`` has the usage)."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"distillset: error: {self.prog.split(' ', 1)[-1]}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="distillset", description="Dataset distillation: condense a training set into a tiny synthetic one.")
    parser.add_argument("--version", action="version", version=f"distillset {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("methods", help="list every registered method: name, kind, modality, what it does")

    p = sub.add_parser("coreset", help="select real images (or graph nodes) per class: " + _names("selection"))
    p.add_argument("--method", required=True, metavar="METHOD",
                   help="selection method: " + _names("selection"))
    p.add_argument("--dataset", required=True, help="registry name, imagefolder:PATH or npz:PATH")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--ipc", type=_positive_int, help="images per class")
    size.add_argument("--ratio", type=float, help="fraction of the training set to keep, class-balanced (e.g. 0.01)")
    size.add_argument("--reduction", type=float, help="graphs: fraction of the labelled training nodes kept (e.g. 0.5)")
    p.add_argument("--config", help="YAML file of method options (command-line flags win)")
    p.add_argument("--bins", type=_positive_int, help="dq: GraphCut bins per class (default 10)")
    p.add_argument("--patch-drop", type=float, help="dq: fraction of least salient patches dropped and filled (default 0)")
    p.add_argument("--patch-size", type=_positive_int, help="dq: patch side in pixels (default 4)")
    p.add_argument("--image-size", type=_image_size, help="resize image-folder data to H or H,W")
    p.add_argument("--out", required=True, help="output directory (resumes / recognises a finished run)")
    p.add_argument("--feature-model", help="network trained on the real data for herding/kcenter/forgetting/dq (default convnet)")
    p.add_argument("--feature-epochs", type=_positive_int, help="its training epochs (default 3, forgetting 20; cached)")
    p.add_argument("--never-learned", choices=("most", "zero"),
                   help="forgetting: images never classified correctly rank as the 'most' forgotten (Toneva et al., default) "
                        "or at 'zero' events (DeepCore)")
    _add_data_options(p, seed_default=None)

    p = sub.add_parser("graph-report", help="accuracy and Laplacian Energy Distribution shift of a condensed graph")
    p.add_argument("synset", help="a graph SynSet file")
    p.add_argument("--models", default="gcn", help="GNNs to evaluate (default gcn): gcn, sgc, appnp, cheby, sage, mlp, or "
                                                   "GCond's cross-architecture variants gcond-sgc, gcond-appnp, gcond-cheby, "
                                                   "gcond-sage, gcond-mlp")
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
    p.add_argument("--experts", type=_positive_int, default=100, help="number of experts (default 100, MTT's)")
    p.add_argument("--epochs", type=_positive_int, default=50, help="epochs per expert (default 50)")
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (default 0.01, no momentum as in MTT)")
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--optimizer", choices=("sgd", "gsam"), default="sgd",
                   help="sgd (MTT's experts, default) or gsam (DATM's flat experts; with --epochs 100 as DATM)")
    p.add_argument("--rho", type=float, default=0.01, help="gsam: perturbation radius (default 0.01, DATM's)")
    p.add_argument("--alpha", type=float, default=0.3, help="gsam: surrogate-gap weight (default 0.3, DATM's)")
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

    p = sub.add_parser("condense", help="learn a synthetic set: " + _names("condensation"))
    p.add_argument("--method", required=True, metavar="METHOD",
                   help="condensation method: " + _names("condensation") + " (`distillset methods` says what each does)")
    p.add_argument("--dataset", required=True, help="registry name, imagefolder:PATH or npz:PATH; graphs: cora, citeseer, ...")
    p.add_argument("--ipc", type=_positive_int, help="images per class (image methods)")
    p.add_argument("--reduction", type=float, help="graph methods: fraction of the labelled training nodes kept (e.g. 0.5)")
    p.add_argument("--epochs", type=_positive_int, help="graph methods: condensation epochs (default 600)")
    p.add_argument("--model", help="training network (any zoo model; default convnet); graphs: the matching GNN, "
                                   "sgc (default) or gcn")
    p.add_argument("--fanout", type=_positive_int, help="graph methods with --model gcn: real neighbours sampled per node "
                                                        "and hop (default: all, exact; for large graphs)")
    p.add_argument("--ot-weight", type=_non_negative_float, help="sgdd, sgdd-led: weight of the optimal-transport structure "
                                                                 "term (sgdd: to the original graph's signal distribution, "
                                                                 "default 1; sgdd-led: to its Laplacian energy distribution, "
                                                                 "default 10; 0 switches it off)")
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
    p.add_argument("--eval-epochs", type=_positive_int, help="their training epochs (default: the method's evaluation)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--out", required=True, help="output directory (an interrupted run resumes from it)")
    _add_data_options(p, seed_default=None)

    p = sub.add_parser("evaluate", help="train fresh networks on a SynSet and test them on real data")
    p.add_argument("synset", help="a .safetensors SynSet file")
    p.add_argument("--models", default="convnet", help="comma-separated model names (default convnet)")
    p.add_argument("--runs", type=_positive_int, default=5, help="fresh networks per model (default 5)")
    p.add_argument("--epochs", type=_positive_int, help="training epochs (default: the method's; 300, 1000 with augmentation)")
    p.add_argument("--lr", type=float, help="training lr (default: the SynSet's learned lr, else 0.01)")
    p.add_argument("--augment", choices=("auto", "none", "dsa", "dc"), default="auto",
                   help="training augmentation: auto (default) = the set's method's published evaluation, recorded in the "
                        "file (dsa: DSA/DM/MTT/DATM; dc: the DC code's per dataset and model: DC sets and coresets); with "
                        "an augmentation the default epochs are 1000")
    p.add_argument("--dsa", dest="augment", action="store_const", const="dsa", help="the same as --augment dsa")
    p.add_argument("--batch-size", type=_positive_int, help="training minibatch (default: the method's, else 256)")
    p.add_argument("--strategy", choices=("auto", "sequential", "batched"), default="auto",
                   help="train the runs one by one, or all at once with vmap (auto: batched on CUDA only)")
    p.add_argument("--lr-schedule", choices=("reference", "half", "learned"), default="reference",
                   help="reference (default): as the DC/DSA/DM/MTT code, epochs + 1 passes and a new SGD at lr x0.1 after "
                        "pass epochs // 2 + 1; half: epochs passes, x0.1 from pass epochs // 2, momentum kept (this "
                        "library's evaluations before 2026-12-05); learned (DD sets): DD's own evaluation, fresh "
                        "networks trained by the set's learned step sizes, step by step")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile each network's training steps: about 1.35x faster on a CPU ConvNet after a one-off "
                        "~30 s; the same seed gives the same result run to run, but not the uncompiled bytes")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    _add_label_options(p)
    p.add_argument("--val-fraction", type=float, default=0.0,
                   help="hold out this fraction of every class of the real training split for the choices below")
    p.add_argument("--lr-grid", help="comma-separated training lrs to choose from on the validation split")
    p.add_argument("--epochs-grid", help="comma-separated epoch budgets to choose from on the validation split")
    p.add_argument("--temperature-grid", help="comma-separated temperatures (--labels teacher) to choose from")
    p.add_argument("--val-runs", type=_positive_int, help="networks per candidate on the validation split (default --runs)")
    p.add_argument("--edge-threshold", type=float, default=0.0, help="graph SynSets: drop edges lighter than this "
                   "(GCond's cross-architecture test: 0.05 on Cora/CiteSeer; default 0)")
    p.add_argument("--dropout", type=float, help="graph SynSets: every GNN's dropout (GCond's cross-architecture test: 0; "
                   "default: each model's own)")
    _add_data_options(p)

    for name, help_text in (("score", "leak-free robust scores of a set: hard/soft labels against a random subset, HLR, IOR, "
                                       "ARS, bytes (README: robust scores)"),
                            ("compare", "the scores of several sets side by side (random baselines shared)")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("synsets", nargs=1 if name == "score" else "+", help="SynSet file(s)")
        p.add_argument("--model", default="convnet", help="evaluation model (default convnet)")
        p.add_argument("--runs", type=_positive_int, default=5, help="fresh networks per figure (default 5)")
        p.add_argument("--epochs", type=_positive_int, help="training epochs of every arm (default: the set's declared budget)")
        p.add_argument("--teacher", help="pool folder(s)/member file(s): the soft arm is knowledge distillation from it")
        p.add_argument("--temperature", type=float, default=1.0, help="distillation temperature (default 1)")
        p.add_argument("--full-epochs", type=_positive_int, default=20, help="budget of the whole-data reference (default 20)")
        p.add_argument("--full-runs", type=_positive_int, default=2, help="networks of the whole-data reference (default 2)")
        p.add_argument("--no-full", dest="full", action="store_false", help="skip the whole-data reference (and HLR)")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        _add_data_options(p)

    p = sub.add_parser("import", help="read a set another tool published (DC/DSA/DM res_*.pt, MTT/DATM images_*.pt, "
                                      "DD-Ranking tensors, GCond's saved graphs) into a SynSet")
    p.add_argument("file", help="the file to read (never executed: tensors only)")
    p.add_argument("--from", dest="source", required=True, choices=("dc", "mtt", "datm", "ddranking", "gcond"))
    p.add_argument("--dataset", required=True, help="the dataset the set was made from")
    p.add_argument("--out", required=True, help="the SynSet file to write")
    p.add_argument("--labels", dest="labels_file", help="labels file (mtt/datm labels_*.pt, DD-Ranking labels)")
    p.add_argument("--lr", dest="lr_file", help="learned lr file (mtt/datm lr_*.pt)")
    p.add_argument("--adjacency", dest="adjacency_file", help="gcond: the adj_*.pt of the feat_*.pt given (default: "
                                                               "its name with adj_ for feat_)")
    p.add_argument("--index", type=int, default=0, help="which experiment of a res_*.pt 'data' list (default 0)")
    p.add_argument("--method", help="the method that made it (default: dc for --from dc, else the tool's name); sets "
                                    "the evaluation recorded in the file")
    p.add_argument("--zca", action="store_true", help="the images are ZCA-whitened (MTT/DATM --zca): attach our ZCA of "
                                                     "the dataset (kornia's definition, eps 0.1)")
    p.add_argument("--data-root")

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
    _add_deterministic(p)

    p = sub.add_parser("demo", help="the embedded default: digits, DC vs random coresets, evaluation")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--runs", type=_positive_int, default=3)
    p.add_argument("--epochs", type=_positive_int, default=300)
    p.add_argument("--dc-iterations", type=int, default=100,
                   help="iterations of the DC row at 1 image per class (default 100; 0 leaves it out)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    _add_deterministic(p)
    return parser
