"""``graph-report``: accuracy, Laplacian Energy Distribution shift and (optionally) link prediction of a condensed graph."""

from __future__ import annotations

from .class_structure import class_structure
from .data import GraphData
from .evaluate import check_synset_fits, evaluate_graph
from .led import energy_distribution, graph_led, led_shift, led_shifts, plot_distributions
from .models import GCOND_CROSS_EDGE_THRESHOLD
from .synset import GraphSynSet


def graph_report(synset: GraphSynSet, data: GraphData, models: list[str], runs: int = 5, epochs: int = 600, seed: int = 0,
                 device: str | None = "cpu", link_prediction: bool = False, plot: str | None = None) -> dict:
    """One mapping: GNN accuracies (best epoch on the real validation split), the LED shift (1-Wasserstein distance
    between the energy distributions over the eigenvalue axis; ``led_shift`` with isolated nodes at eigenvalue 1,
    ``led_shift_conventions`` under both conventions), the mean eigenvalues, the class structure of the edges above
    GCond's threshold 0.05 (``class_structure``: a graph of disjoint class cliques trains GCNs but not decoupled
    models), and with ``link_prediction``
    the ROC-AUC of held-out real edges for the condensed graph and for the whole graph."""
    check_synset_fits(synset, data)
    original = graph_led(data)
    condensed = energy_distribution(synset.features, synset.adjacency)
    results = evaluate_graph(synset, data, models, runs=runs, epochs=epochs, seed=seed, device=device)
    report = {"dataset": synset.dataset, "method": synset.method, "nodes": len(synset), "reduction": synset.reduction,
              "led_shift": led_shift(original, condensed),
              "led_shift_conventions": led_shifts(data, synset.features, synset.adjacency),
              "isolated_nodes": int((synset.adjacency.sum(1) == 0).sum()),
              "led_mean_eigenvalue": {"original": original.mean_eigenvalue, "condensed": condensed.mean_eigenvalue},
              "class_structure": class_structure(synset.adjacency, synset.labels, GCOND_CROSS_EDGE_THRESHOLD),
              "results": {m: r.as_dict() for m, r in results.items()}}
    if link_prediction:
        from .tasks import link_prediction_auc

        report["link_prediction_auc"] = link_prediction_auc(synset, data, seed=seed)
        report["link_prediction_auc_whole_graph"] = link_prediction_auc(None, data, seed=seed)
    if plot:
        plot_distributions({f"{synset.dataset} (whole graph)": original, f"{synset.method} ({len(synset)} nodes)": condensed}, plot)
    return report
