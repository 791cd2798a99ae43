"""Why SGDD's condensed graphs fail GCond's decoupled architectures: the structure its regulariser learns.

SGDD's Cora graphs (r = 0.5) read 81 with a GCN but 55-60 with GCond's "SGC" (an MLP, then A^2), APPNP and "MLP"
(a GCN trained without edges) in the graph table. This script measures, for each condensed graph, how much of its
edge weight joins nodes of one class (the weighted edge homophily), what fraction of the same-class and of the
cross-class node pairs carry an edge (above GCond's 0.05 threshold), and its mean degree; beside them the GCN and
GCond's Table 3 columns. Its own cells condense ``sgdd`` with the label-smoothness weight ``beta`` set (0 = the
regulariser off, the ablation that tests whether beta * tr(Y'^T L_sym Y') makes the structure); ``--import`` reads
cells that ``graph_table.py`` already condensed (their graphs in its --out folder, their evaluation in its results
file) so the default-beta rows cost nothing. Cells are stored in --results as they finish (atomic JSON); the graphs this
script condenses are kept in --out.

GCond's Table 3 GCN differs from the main protocol's GCN in two ways at once: edges lighter than 0.05 are dropped and
dropout is 0 (instead of 0.5). ``--separate`` adds a GCN with each change alone (``gcn@threshold``: edges dropped,
dropout 0.5; ``gcn@dropout0``: every edge, dropout 0) to every row whose graph is at hand, to tell which one moves a
graph's accuracy; a row of this script's own whose graph was not kept is condensed again (the same seed gives the same
graph on the same CPU model and thread count, checked against the stored structure; another CPU gives another graph,
so each row records the CPU it was condensed on, and one made on another CPU is refused with both named).

    OMP_NUM_THREADS=1 python benchmarks/sgdd_structure.py --data-root ../shared/data --reduction 0.25 --betas 0 --seeds 0,1 \\
        --import benchmarks/results/graph_table_v2_c8.json:runs/bench-graph-v2 --separate
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

import distillset as ds
from common import add_results_arguments, open_results
from distillset.driver import run_in_memory
from distillset.fileio import atomic_write_json
from distillset.graph.class_structure import class_structure
from distillset.graph.data import load_graph
from distillset.graph.evaluate import evaluate_graph
from distillset.graph.models import GCOND_CROSS_EDGE_THRESHOLD
from distillset.graph.synset import GraphSynSet
from graph_table import ARCHS, evaluate_cell

# The Table 3 GCN's two differences from the main GCN, one at a time (see the module docstring).
SEPARATE = {"gcn@threshold": {"edge_threshold": GCOND_CROSS_EDGE_THRESHOLD}, "gcn@dropout0": {"dropout": 0.0}}
STRUCTURE = ("homophily", "same_class_linked", "cross_class_linked", "mean_degree")


def import_cells(spec: str, results: dict, path: Path) -> None:
    """Store graph_table cells (``RESULTS.json:OUT``) as this script's rows, their graphs read from OUT; the results
    file is rewritten only when a cell (or a stored row's graph path) is new."""
    table_file, out = spec.rsplit(":", 1)
    added = 0
    for key, cell in json.loads(Path(table_file).read_text()).items():
        if len(key.split("/")) != 4 or not set(ARCHS) <= set(cell["results"]):
            continue
        settings = cell.get("settings", {})
        row = key if settings.get("beta") is None else f"{key}/beta{settings['beta']:g}"
        synset_file = Path(out) / key.replace("/", "-") / "synset.safetensors"
        if not synset_file.exists():
            continue
        if row in results:
            if "graph" not in results[row]:  # stored before rows kept their graph's path
                results[row]["graph"] = str(synset_file)
                added += 1
            continue
        synset = GraphSynSet.load(synset_file)
        results[row] = {"results": cell["results"], "beta": settings.get("beta"), "epochs": settings.get("epochs"),
                        "source": table_file, "graph": str(synset_file),
                        **class_structure(synset.adjacency, synset.labels, GCOND_CROSS_EDGE_THRESHOLD)}
        added += 1
    if added:
        atomic_write_json(path, results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--dataset", default="cora")
    parser.add_argument("--reduction", type=float, default=0.25)
    parser.add_argument("--betas", default="0", help="label-smoothness weights to condense sgdd with (0 = regulariser off)")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, help="condensation epochs (default: sgdd's own, 2000)")
    parser.add_argument("--runs", type=int, default=3, help="networks per architecture and graph")
    parser.add_argument("--eval-epochs", type=int, default=600)
    parser.add_argument("--import", dest="imports", default="",
                        help="comma-separated RESULTS.json:OUT of graph_table.py whose cross-architecture cells to include")
    parser.add_argument("--out", default="runs/sgdd-structure", help="folder the condensed graphs are kept in")
    parser.add_argument("--separate", action="store_true",
                        help="add the Table 3 GCN's two changes one at a time (gcn@threshold, gcn@dropout0)")
    add_results_arguments(parser, "benchmarks/results/sgdd_structure.json")
    args = parser.parse_args()
    ds.retain_freed_memory()  # CPU speed, same results (distillset.host_memory)
    path, results = open_results(args)
    for spec in filter(None, args.imports.split(",")):
        import_cells(spec, results, path)
    if not args.table:
        data = load_graph(args.dataset, args.data_root)
        evaluation_args = SimpleNamespace(runs=args.runs, eval_epochs=args.eval_epochs, device="cpu")
        for beta in [float(b) for b in filter(None, args.betas.split(","))]:
            for seed in [int(s) for s in args.seeds.split(",")]:
                key = f"{args.dataset}/sgdd/{args.reduction:g}/{seed}/beta{beta:g}"
                graph_file = Path(args.out) / key.replace("/", "-") / "synset.safetensors"
                if key in results:
                    if graph_file.exists():
                        results[key].setdefault("graph", str(graph_file))  # kept, but cut off before its row said so
                    if graph_file.exists() or not args.separate:
                        continue
                condense_row(key, graph_file, data, results, evaluation_args, beta, seed, args)
                atomic_write_json(path, results)
        if args.separate:
            for key, row in results.items():
                if (not key.startswith(f"{args.dataset}/") or set(SEPARATE) <= set(row["results"])
                        or not Path(row.get("graph", "")).is_file()):
                    continue
                synset, seed = GraphSynSet.load(row["graph"]), int(key.split("/")[3])
                for name, options in SEPARATE.items():
                    row["results"][name] = evaluate_graph(synset, data, ["gcn"], runs=args.runs, epochs=args.eval_epochs,
                                                          seed=seed, **options)["gcn"].as_dict()
                atomic_write_json(path, results)
                print(f"{key}: GCN {100 * np.mean(row['results']['gcn']['accs']):.2f}, edges >= 0.05 only "
                      f"{100 * np.mean(row['results']['gcn@threshold']['accs']):.2f}, dropout 0 only "
                      f"{100 * np.mean(row['results']['gcn@dropout0']['accs']):.2f}", flush=True)
    print(table(results))


def condense_row(key: str, graph_file: Path, data, results: dict, evaluation_args, beta: float, seed: int, args) -> None:
    """Condense sgdd with label-smoothness weight ``beta`` and keep its graph; a new row is evaluated, a stored row
    (condensed again only to keep its graph) must come out with the structure it was stored with."""
    method = ds.get_method("sgdd", "graph")
    options = {"reduction": args.reduction, "seed": seed, "beta": beta, **({"epochs": args.epochs} if args.epochs else {})}
    start = time.perf_counter()
    synset = run_in_memory(method, data, options)
    seconds = time.perf_counter() - start
    structure = class_structure(synset.adjacency, synset.labels, GCOND_CROSS_EDGE_THRESHOLD)
    cpu = ds.environment()["cpu"]
    if key in results:
        stored = {name: results[key][name] for name in STRUCTURE}
        if stored != {name: structure[name] for name in STRUCTURE}:
            made_on = results[key].get("cpu", "a CPU it did not record")
            raise SystemExit(f"{key}: condensed again, its graph differs from the stored row ({stored} vs {structure}); "
                             f"the row was condensed on {made_on}, this is {cpu} (CPU results repeat only on the same "
                             f"CPU); remove the row from {args.results} to measure it afresh")
        synset.save(graph_file)  # only a graph that matches its row is kept beside it
        results[key]["graph"] = str(graph_file)
        return
    synset.save(graph_file)
    evaluation = evaluate_cell(synset, data, ARCHS, evaluation_args, seed)
    results[key] = {"results": {m: r.as_dict() for m, r in evaluation.items()}, "beta": beta,
                    "epochs": method.make_config(options).epochs, "condense_seconds": seconds,
                    "date": time.strftime("%Y-%m-%d"), "graph": str(graph_file), "cpu": cpu, **structure}
    print(f"{key}: GCN {100 * evaluation['gcn'].mean:.2f}, homophily {structure['homophily']:.3f} ({seconds:.0f} s)",
          flush=True)


def table(results: dict) -> str:
    """One row per (dataset, method, r, beta): means over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for key, cell in results.items():
        dataset, method, reduction = key.split("/")[:3]
        beta = "-" if cell.get("beta") is None else f"{cell['beta']:g}"
        groups.setdefault((dataset, method, float(reduction), beta), []).append(cell)
    columns = ARCHS[:1] + list(SEPARATE) + ARCHS[1:]
    names = ["GCN", "GCN, edges >= 0.05 only", "GCN, dropout 0 only"] + [m.removesuffix("@table3") + " (Table 3)"
                                                                        for m in ARCHS[1:]]
    lines = ["| dataset | method | r | beta | " + " | ".join(names) + " | homophily | same-class pairs linked | "
             "cross-class pairs linked | mean degree | seeds |",
             "|---|---|---|---|" + "---|" * len(names) + "---|---|---|---|---|"]
    for (dataset, method, reduction, beta), cells in sorted(groups.items()):
        accs = [mean_accuracy(cells, m) for m in columns]
        stats = [f"{np.mean([c[s] for c in cells]):.3f}" for s in ("homophily", "same_class_linked", "cross_class_linked")]
        lines.append(f"| {dataset} | {method} | {reduction:g} | {beta} | " + " | ".join(accs) + " | " + " | ".join(stats)
                     + f" | {np.mean([c['mean_degree'] for c in cells]):.2f} | {len(cells)} |")
    return "\n".join(lines)


def mean_accuracy(cells: list[dict], model: str) -> str:
    """Mean test accuracy (%) of ``model`` over the cells' graphs that have it ("(k of n)" when not all do)."""
    having = [c for c in cells if model in c["results"]]
    if not having:
        return "-"
    mean = f"{100 * np.mean([np.mean(c['results'][model]['accs']) for c in having]):.1f}"
    return mean if len(having) == len(cells) else f"{mean} ({len(having)} of {len(cells)})"


if __name__ == "__main__":
    main()
