"""The graph side of the commands: ``graph-report`` and ``evaluate`` of a graph SynSet (parse, call, print)."""

from __future__ import annotations

import json

from ..errors import DistillsetError


def cmd_graph_report(args) -> int:
    from ..graph.data import load_graph
    from ..graph.report import graph_report
    from ..graph.synset import GraphSynSet

    synset = GraphSynSet.load(args.synset)
    data = load_graph(synset.dataset, args.data_root, verify=args.verify)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    report = graph_report(synset, data, models, runs=args.runs, epochs=args.epochs, seed=args.seed, device=args.device,
                          link_prediction=args.link_prediction, plot=args.plot)
    if args.json:
        print(json.dumps(report))
        return 0
    means = report["led_mean_eigenvalue"]
    print(f"{args.synset}: {synset.method} on {synset.dataset}, {len(synset)} nodes, reduction {synset.reduction:g}")
    conventions = report["led_shift_conventions"]
    print(f"LED shift (1-Wasserstein on the eigenvalue axis): {conventions['one']:.4f} with isolated nodes at eigenvalue 1, "
          f"{conventions['zero']:.4f} at 0 ({report['isolated_nodes']} isolated of {len(synset)}); mean eigenvalue of the "
          f"feature energy {means['original']:.3f} (whole graph) vs {means['condensed']:.3f} (condensed)")
    structure = report["class_structure"]
    print(f"edges above 0.05: homophily {structure['homophily']:.3f}, same-class pairs linked {structure['same_class_linked']:.3f}, "
          f"cross-class pairs linked {structure['cross_class_linked']:.3f}, mean degree {structure['mean_degree']:.2f} "
          "(homophily 1 with no cross-class pairs linked: disjoint class cliques, which decoupled models do not train on)")
    for m, r in report["results"].items():
        print(f"{m}: {100 * r['mean']:.2f} +- {100 * r['std']:.2f} ({len(r['accs'])} runs, selected on the real validation split)")
    if args.link_prediction:
        print(f"link prediction ROC-AUC: {report['link_prediction_auc']:.4f} (trained on the whole graph: "
              f"{report['link_prediction_auc_whole_graph']:.4f}); this library's protocol, valid for a set condensed "
              f"without the held-out edges (distillset.graph.tasks.link_training_graph, seed {args.seed})")
    if args.plot:
        print(f"plot: {args.plot}")
    return 0


def evaluate_graph_file(args, models: list[str]) -> int:
    from ..graph.data import load_graph
    from ..graph.evaluate import evaluate_graph
    from ..graph.synset import GraphSynSet

    synset = GraphSynSet.load(args.synset)
    models = ["gcn" if m == "convnet" else m for m in models]  # the image default means the graph default
    data = load_graph(synset.dataset, args.data_root, verify=args.verify)
    if not 0 <= args.edge_threshold <= 1 or (args.dropout is not None and not 0 <= args.dropout < 1):
        raise DistillsetError("--edge-threshold must be in [0, 1] and --dropout in [0, 1)")
    results = evaluate_graph(synset, data, models, runs=args.runs, epochs=args.epochs or 600, seed=args.seed, device=args.device,
                             edge_threshold=args.edge_threshold, dropout=args.dropout)
    payload = {"dataset": synset.dataset, "results": {m: r.as_dict() for m, r in results.items()},
               "protocol": {"edge_threshold": args.edge_threshold, "dropout": args.dropout}}
    if args.json:
        print(json.dumps(payload))
    else:
        print(f"| model | test accuracy (%) | runs | dataset {synset.dataset}, {len(synset)} synthetic nodes |\n|---|---|---|---|")
        for m, r in results.items():
            print(f"| {m} | {100 * r.mean:.2f} +- {100 * r.std:.2f} | {len(r.accs)} | |")
    return 0
