"""The reproduction ledger's graph rows (issue 39): GCond's Table 2 (and SGDD's CiteSeer rows) beside ours.

The cells are measured by ``benchmarks/graph_table.py`` at GCond's protocol and merged into
``benchmarks/results/graph_table_v2.json`` (BENCHMARKS.md, "The graph table re-measured" and "CiteSeer"); this module
only reads them, so ``python benchmarks/ledger.py write`` puts the graph rows into REPRODUCTION.md beside the image
rows without training anything. Each row: five condensed (or selected) graphs, seeds 0-4; each graph is read by three
2-layer GCNs (GCond's ``test_with_val``: the epoch chosen on the real validation split, tested on the real test
split); ours is the mean +- std over the five graphs of each graph's mean, compared with the published mean +- std
once all five are in and share one setting (``graph_table.FULL_SEEDS``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from distillset.published import verdict
from common import published_columns
from graph_table import FULL_SEEDS, TABLE3, accuracies, cell_groups
from ledger_findings import GRAPH_FINDINGS, UNPUBLISHED

GRAPH_RESULTS = Path(__file__).resolve().parent / "results" / "graph_table_v2.json"
MACHINE = "CPU (2 cores), one thread per process"


def graph_table(results: dict) -> str:
    """The ledger's graph table: one line per (dataset, method, r) of the stored cells, then the whole graphs."""
    lines = ["| method | dataset | r | published | source | ours | graphs x GCNs | protocol | command | measured | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (dataset, method, reduction), cells in sorted(cell_groups(results).items(), key=row_order):
        gcn = accuracies(cells, "gcn")
        pub, pub_std, pub_text, source = published_columns(method, dataset, reduction)
        settings = {json.dumps(c.get("settings"), sort_keys=True) for c in cells}
        said = verdict(float(np.mean(gcn)), pub, pub_std, complete=len(gcn) >= FULL_SEEDS and len(settings) == 1)
        finding = GRAPH_FINDINGS.get((dataset, method, reduction)) or (UNPUBLISHED.get(method, "") if pub is None else "")
        networks = {len(c["results"]["gcn"]["accs"]) for c in cells}
        lines.append(f"| {method} | {dataset} | {reduction:g} | {pub_text} | {source} | {np.mean(gcn):.2f} +- {np.std(gcn):.2f} | "
                     f"{len(cells)} x {'/'.join(map(str, sorted(networks)))} | {protocol(method, cells)} | "
                     f"`{command(dataset, method, reduction, cells)}` | {dates(cells)}; {MACHINE} | "
                     f"{said}{'; ' + finding if finding else ''} |")
    for key, cell in sorted(results.items()):
        if key.endswith("/whole"):
            dataset, accs = key.split("/")[0], [100 * a for a in cell["accs"]]
            pub, pub_std, pub_text, source = published_columns("whole", dataset, 0)
            lines.append(f"| whole graph | {dataset} | - | {pub_text} | {source} | {np.mean(accs):.2f} +- {np.std(accs):.2f} | "
                         f"1 x {len(accs)} | GCN on the whole training graph, the same schedule | "
                         f"`python benchmarks/graph_table.py --datasets {dataset} --data-root ../shared/data` (its first cell, "
                         f"before any method's) | {MACHINE} | {verdict(float(np.mean(accs)), pub, pub_std)} |")
    return "\n".join(lines)


METHOD_ORDER = ("gcond", "sgdd", "gcond-x", "gcond-x-release", "random", "herding", "kcenter")


def row_order(item: tuple[tuple[str, str, float], list[dict]]) -> tuple:
    """Cora before CiteSeer (GCond's order), the condensation methods before the selections, r ascending."""
    (dataset, method, reduction), _ = item
    rank = METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)
    return (dataset != "cora", dataset, rank, method, reduction)


def protocol(method: str, cells: list[dict]) -> str:
    """How the row's graphs were made and read: the condensation's epochs (from the cells' own settings) or the
    selection, then the evaluation."""
    epochs = sorted({c["settings"]["epochs"] for c in cells if c.get("settings")})
    if epochs:
        made = f"condensed {'/'.join(map(str, epochs))} epochs"
    elif method == "random":
        made = "class-balanced uniform draw of the graph's seed"
    else:
        made = "selected on the outputs of a whole-graph GCN trained with the graph's seed (GCond's)"
    return f"{made}; 2-layer GCN, validation-chosen epoch (GCond's test_with_val)"


def command(dataset: str, method: str, reduction: float, cells: list[dict]) -> str:
    """The graph_table.py command that measures the row (with --cross-arch where its cells carry GCond's Table 3)."""
    cross = " --cross-arch" if any(m.endswith(TABLE3) for c in cells for m in c["results"]) else ""
    return (f"python benchmarks/graph_table.py --datasets {dataset} --methods {method} --reductions {reduction:g} "
            f"--seeds 0,1,2,3,4{cross} --data-root ../shared/data")


def dates(cells: list[dict]) -> str:
    return ", ".join(sorted({c["date"] for c in cells if c.get("date")})) or "-"


def graph_section(path: Path = GRAPH_RESULTS) -> str:
    """REPRODUCTION.md's graph section, or a line saying the cells are not there."""
    head = ("## Graph condensation (GCond's protocol)\n\n"
            "From `benchmarks/results/graph_table_v2.json`, measured by `benchmarks/graph_table.py` (BENCHMARKS.md, "
            "\"The graph table re-measured\"). r is GCond's reduction (Cora 1.3 / 2.6 / 5.2% of the nodes at 0.25 / 0.5 / "
            "1, CiteSeer 0.9 / 1.8 / 3.6%). Ours: mean +- std over the condensed graphs, each the mean of its GCNs; "
            "the verdict compares it with the published mean +- std once a row has its five graphs.\n\n")
    if not path.is_file():
        return head + f"not measured: {path.name} is absent\n"
    return head + graph_table(json.loads(path.read_text())) + "\n"
