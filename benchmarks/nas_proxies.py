"""NAS on a proxy: condensed sets against a random subset of the same size and early-stopped whole data.

The DC paper searches architectures by training every candidate on a condensed set instead of the
whole data. This script condenses DC/DSA/DM proxies (--ipc per class) from the NAS search split only
(the validation images that rank the candidates are held out, so no proxy has seen them), then runs
the search (`distillset nas`) with each proxy, with a random subset of the same size, and with
whole-data training stopped early at the same training cost (images seen per candidate = proxy size x
--proxy-epochs). Every search is ranked against one cached reference (every candidate trained
--reference-epochs on the whole search split). Proxies are saved in OUT as they are made and every
search result is kept in OUT/results.json, so an interrupted benchmark resumes.

    python benchmarks/nas_proxies.py --data-root ../shared/data --dataset fashion-mnist --out runs/nas-bench
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import distillset as ds
from distillset.applications.nas import NASConfig, run_nas, search_data
from distillset.fileio import atomic_write_json


def parse_iterations(text: str) -> dict[str, int]:
    return {method: int(n) for method, _, n in (part.partition("=") for part in text.split(",") if part)}


def read_results(path: Path) -> dict:
    """The stored searches, read afresh each time: a second process may be filling other proxies' cells of
    the same file, and a stale copy written back would drop them."""
    return json.loads(path.read_text()) if path.is_file() else {}


def make_proxy(method: str, path: Path, search, args, iterations: int | None) -> None:
    """Condense ``method``'s proxy from the search split and save it (skipped when it already exists)."""
    if path.is_file():
        return
    start = time.perf_counter()
    options = {"init": args.init} if args.init else {}
    synset = ds.condense_real(method, search, args.ipc, model=args.model, iterations=iterations, seed=args.seed,
                           options=options)
    synset.config.update(nas_search_split={"validation_fraction": args.validation_fraction, "seed": args.seed},
                         iterations=iterations, init=args.init, condense_seconds=time.perf_counter() - start)
    synset.save(path)
    print(f"{method} proxy: {iterations} iterations, {time.perf_counter() - start:.0f} s -> {path}", flush=True)


def proxy_path(out: Path, method: str, args) -> Path:
    """Where ``method``'s proxy is kept; a non-default --init gets its own file, so both starts can be compared."""
    start = f"-init-{args.init}" if args.init else ""
    return out / f"{method}-ipc{args.ipc}{start}.safetensors"


def table(rows: list[dict]) -> str:
    lines = ["| proxy | images x epochs | Spearman | chosen | its reference val. acc. | best reference | chosen, retrained: test acc. "
             "| search (s) | condense (s) | proxy tensors (MB) | RSS growth (MB) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['proxy']} | {r['proxy_images']} x {r['proxy_epochs']:.3g} | {r['spearman']:.3f} | {r['chosen']} | "
                     f"{100 * r['chosen_reference_accuracy']:.2f} | {100 * r['best_reference_accuracy']:.2f} | "
                     f"{100 * r['chosen_test_accuracy_after_retraining']:.2f} | {r['search_seconds']:.0f} | "
                     f"{r.get('condense_seconds', 0):.0f} | {r['memory']['proxy_tensor_mb']:.2f} | "
                     f"{r['memory']['peak_rss_growth_mb']:.0f} |")
    if rows:
        lines += ["", f"reference: {len(rows[0]['scores'])} candidates x {rows[0]['config']['reference_epochs']:g} epochs on the "
                      f"search split, {rows[0]['reference_seconds']:.0f} s; RSS growth: the process's peak resident memory "
                      "gained during that search (0 when an earlier search in the same process peaked higher)"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--space", default="small")
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--methods", default="dc,dsa,dm")
    parser.add_argument("--model", default="convnet", help="the network the proxies are condensed with")
    parser.add_argument("--iterations", default="dc=20,dsa=20,dm=200", help="condensation iterations per method")
    parser.add_argument("--init", choices=("real", "noise"),
                        help="where the condensed proxies start (default: each method's own; DC's is noise)")
    parser.add_argument("--proxy-epochs", type=float, default=300)
    parser.add_argument("--reference-epochs", type=float, default=2)
    parser.add_argument("--final-epochs", type=float, default=2)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/nas-bench")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = ds.resolve_device(args.device)
    data = ds.load_dataset(args.dataset, data_root=args.data_root)
    real = ds.real_data(data, "train", device)
    search = search_data(real, args.validation_fraction, args.seed)
    iterations = parse_iterations(args.iterations)
    methods = [m for m in args.methods.split(",") if m]
    paths = {method: proxy_path(out, method, args) for method in methods}
    for method, path in paths.items():
        make_proxy(method, path, search, args, iterations.get(method))
    equal_cost = args.ipc * real.num_classes * args.proxy_epochs / search.labels.numel()
    proxies = [("random", args.proxy_epochs)] + [(str(path), args.proxy_epochs) for path in paths.values()] \
        + [("whole", equal_cost)]
    results_path = out / "results.json"
    rows = []
    for proxy, epochs in proxies:
        results = read_results(results_path)
        config = NASConfig(dataset=args.dataset, space=args.space, proxy=proxy, ipc=args.ipc, proxy_epochs=epochs,
                           reference_epochs=args.reference_epochs, final_epochs=args.final_epochs,
                           validation_fraction=args.validation_fraction, seed=args.seed)
        stored = results.get(proxy)
        if stored is None or stored["config"] != asdict(config):
            stored = run_nas(config, out, data_root=args.data_root, device=str(device))
            if Path(proxy).is_file():
                stored["condense_seconds"] = ds.SynSet.load(proxy).config.get("condense_seconds", 0.0)
            results = read_results(results_path)
            results[proxy] = stored
            atomic_write_json(results_path, results)
            print(f"{stored['proxy']}: Spearman {stored['spearman']:.3f}, chosen {stored['chosen']}", flush=True)
        rows.append(stored)
    print(table(rows))


if __name__ == "__main__":
    main()
