"""One graph-condensation cell, condensed and evaluated by 3 GCNs, with its LED shift, weighted degree and homophily.

    OMP_NUM_THREADS=1 python benchmarks/graph_cell.py citeseer gcond 1 1   # dataset method reduction seed
"""
import sys, time
from distillset.graph.data import load_graph
from distillset.graph.evaluate import evaluate_graph
from distillset.graph.gcond import run_gcond
from distillset.graph.led import energy_distribution, graph_led, led_shift
import torch
ds, method, r, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
data = load_graph(ds, "../shared/data")
t = time.perf_counter()
syn = run_gcond(method, ds, r, f"runs/graph-cell/{ds}-{method}-{r:g}-{seed}", seed=seed, data_root="../shared/data", log=lambda m: None)
sec = time.perf_counter() - t
ev = evaluate_graph(syn, data, ["gcn"], runs=3, epochs=600, seed=seed)["gcn"]
A = syn.adjacency; y = syn.labels; same = (y[:, None] == y[None, :]).float()
print(ds, method, r, seed, "GCN runs", [round(100 * a, 1) for a in ev.accs], "LED", round(led_shift(graph_led(data), energy_distribution(syn.features, syn.adjacency)), 4),
      "wdeg", round(A.sum(1).mean().item(), 2), "homophily", round(((A * same).sum() / A.sum()).item(), 3), f"{sec:.0f} s", flush=True)
