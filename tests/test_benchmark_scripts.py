"""The benchmark scripts' bookkeeping on digits: run-by-run storage, resuming, and the tables they print.

Benchmarks are not tests, but a results file that silently re-measures, skips or mixes cells would
corrupt BENCHMARKS.md, so the shared helpers and each table script are exercised at a tiny budget.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import distillset as ds
from distillset.published import verdict

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import common  # noqa: E402


def run_script(module_name: str, args: list[str], monkeypatch) -> None:
    module = __import__(module_name)
    monkeypatch.setattr(sys, "argv", [module_name, *args])
    module.main()


def test_measure_runs_stores_each_run_and_resumes_with_the_missing_ones(tmp_path, digits):
    real = ds.real_data(digits, "train")
    synset = ds.make_coreset("random", real, 2, seed=0)
    path = tmp_path / "results.json"
    results: dict = {}
    cell = common.measure_runs(results, "digits/random/2", path, synset, digits, 2, 5, "cpu", model="mlp", extra={"note": 1})
    assert cell["run_indices"] == [0, 1] and cell["note"] == 1 and json.loads(path.read_text())["digits/random/2"] == cell
    full = ds.evaluate_synset(synset, digits.test_images, digits.test_labels, models=["mlp"], runs=3, epochs=5, seed=0)
    grown = common.measure_runs(results, "digits/random/2", path, synset, digits, 3, 5, "cpu", model="mlp")
    assert grown["accs"] == full.results["mlp"].accs  # runs 0 and 1 kept, run 2 added: the same as all three at once
    assert common.stored_runs(results, "digits/random/2", 5) == dict(enumerate(full.results["mlp"].accs))
    assert common.stored_runs(results, "digits/random/2", 6) == {}  # another schedule is another measurement


def test_merge_refuses_two_different_measurements_of_one_cell(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"x": {"accs": [0.5]}}))
    b.write_text(json.dumps({"x": {"accs": [0.6]}, "y": {"accs": [0.7]}}))
    assert set(common.merge_results({}, [a])) == {"x"}
    with pytest.raises(SystemExit, match="cell x differs"):
        common.merge_results({}, [a, b])
    assert common.merge_results({}, [a, b], may_differ=("x",))["x"] == {"accs": [0.5]}  # the first value seen is kept
    args = argparse.Namespace(results=str(tmp_path / "all.json"), merge=f"{a},{tmp_path / 'c.json'}")
    (tmp_path / "c.json").write_text(json.dumps({"y": {"accs": [0.7]}}))
    path, results = common.open_results(args)
    assert results == {"x": {"accs": [0.5]}, "y": {"accs": [0.7]}} == json.loads(path.read_text())


def test_dq_table_measures_every_method_and_model_and_resumes(tmp_path, monkeypatch, capsys):
    results = tmp_path / "dq.json"
    args = ["--datasets", "digits", "--ratios", "0.05", "--models", "convnet-d2-w32,mlp", "--runs", "1", "--images-seen", "300",
            "--results", str(results)]
    run_script("dq_table", args, monkeypatch)
    cells = json.loads(results.read_text())
    assert set(cells) == {f"digits/{m}/0.05/{n}" for m in ("dq", "random", "herding") for n in ("convnet-d2-w32", "mlp")}
    assert all(c["epochs"] == 4 and c["ipc"] == 7 for c in cells.values())  # 5% of 1437 images = 7 per class; 300 / 70 seen
    out = capsys.readouterr().out
    assert "digits, 5% of the training set" in out and "| dq |" in out
    run_script("dq_table", args + ["--model-runs", "mlp=2"], monkeypatch)
    again = json.loads(results.read_text())
    assert [len(again[f"digits/dq/0.05/{n}"]["accs"]) for n in ("convnet-d2-w32", "mlp")] == [1, 2]
    assert again["digits/dq/0.05/mlp"]["accs"][0] == cells["digits/dq/0.05/mlp"]["accs"][0]
    with pytest.raises(SystemExit, match="cannot take 1x8x8 inputs"):
        run_script("dq_table", args[:5] + ["lenet"] + args[6:], monkeypatch)


def test_guidance_table_condenses_each_setting_once(tmp_path, monkeypatch, capsys):
    results = tmp_path / "guidance.json"
    args = ["--dataset", "digits", "--methods", "dm", "--settings", "none,one-early,archs-final", "--dm-iterations", "2",
            "--pool-models", "convnet-d2-w32,mlp", "--pool-seeds", "0", "--pool-epochs", "1,2", "--models", "mlp",
            "--runs", "1", "--epochs", "5", "--out", str(tmp_path / "runs"), "--results", str(results)]
    run_script("guidance_table", args, monkeypatch)
    cells = json.loads(results.read_text())
    assert cells["digits/dm/none/condense"]["guides"] == ""
    assert cells["digits/dm/one-early/condense"]["guides"].endswith("pool-digits:model=convnet-d2-w32;seed=0;epoch=1")
    assert cells["digits/dm/archs-final/condense"]["guides"].endswith("pool-digits:seed=0;epoch=2")
    assert {"digits/dm/none/mlp", "digits/dm/one-early/mlp", "digits/dm/archs-final/mlp"} <= set(cells)
    assert "| dm | archs-final |" in capsys.readouterr().out
    run_script("guidance_table", args, monkeypatch)  # everything is stored: nothing is condensed or trained again
    assert json.loads(results.read_text()) == cells
    with pytest.raises(SystemExit, match="unknown guide setting"):
        run_script("guidance_table", args + ["--settings", "bogus"], monkeypatch)


def test_nas_proxies_condense_from_the_search_split_and_rank_every_proxy(tmp_path, monkeypatch, capsys):
    out = tmp_path / "nas"
    args = ["--dataset", "digits", "--model", "convnet-d2-w32", "--methods", "dm", "--iterations", "dm=2", "--ipc", "2",
            "--proxy-epochs", "5", "--reference-epochs", "0.5", "--final-epochs", "0.5", "--out", str(out)]
    run_script("nas_proxies", args, monkeypatch)
    proxy = ds.SynSet.load(out / "dm-ipc2.safetensors")
    assert proxy.dataset == "digits" and proxy.config["nas_search_split"] == {"validation_fraction": 0.1, "seed": 0}
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"random", str(out / "dm-ipc2.safetensors"), "whole"}
    whole = results["whole"]
    assert whole["proxy_epochs"] == pytest.approx(20 * 5 / whole["proxy_images"])  # the proxies' cost in images seen
    assert all(-1 <= r["spearman"] <= 1 for r in results.values())
    table = capsys.readouterr().out
    assert "| dm-ipc2 | 20 x 5 |" in table and "| random-ipc2 |" in table
    run_script("nas_proxies", args, monkeypatch)  # stored: nothing searched again
    assert json.loads((out / "results.json").read_text()) == results
    run_script("nas_proxies", args + ["--init", "noise"], monkeypatch)  # another start: its own proxy and row
    from_noise = ds.SynSet.load(out / "dm-ipc2-init-noise.safetensors")
    assert from_noise.config["init"] == "noise" and not torch.equal(from_noise.images, proxy.images)
    grown = json.loads((out / "results.json").read_text())
    assert set(grown) == set(results) | {str(out / "dm-ipc2-init-noise.safetensors")}
    assert all(grown[k] == v for k, v in results.items())


def test_coreset_table_grows_a_cell_by_its_missing_runs(tmp_path, monkeypatch, capsys):
    results = tmp_path / "coreset.json"
    args = ["--datasets", "digits", "--ipc", "1", "--methods", "random,herding", "--epochs", "5", "--results", str(results)]
    run_script("coreset_table", args + ["--runs", "1", "--whole-epochs", "1"], monkeypatch)
    first = json.loads(results.read_text())
    assert set(first) == {"digits/random/1", "digits/herding/1", "digits/whole"}
    run_script("coreset_table", args + ["--runs", "2"], monkeypatch)
    grown = json.loads(results.read_text())
    assert grown["digits/random/1"]["run_indices"] == [0, 1]
    assert grown["digits/random/1"]["accs"][0] == first["digits/random/1"]["accs"][0]
    assert "| digits | herding | " in capsys.readouterr().out


def test_sgdd_ot_weight_sweep_measures_the_led_term_share_of_the_structure_gradient(tmp_path, data_root, monkeypatch, capsys):
    """The sweep that set SGDD's default OT weight: at 1 the LED term was ~1% of the generator's gradient (inert),
    at the default 10 it is several percent. One condensation epoch and one short GCN per cell."""
    results = tmp_path / "ot.json"
    args = ["--data-root", str(data_root), "--method", "sgdd-led", "--weights", "1,10", "--seeds", "1", "--epochs", "1",
            "--runs", "1", "--eval-epochs", "5", "--results", str(results)]
    run_script("sgdd_ot_weight", args, monkeypatch)
    cells = json.loads(results.read_text())
    assert set(cells) == {"sgdd-led/cora/0.25/1/1", "sgdd-led/cora/0.25/10/1"}
    weak, default = cells["sgdd-led/cora/0.25/1/1"]["ot_gradient_ratio"], cells["sgdd-led/cora/0.25/10/1"]["ot_gradient_ratio"]
    assert weak < 0.02 and 0.03 < default < 0.5, (weak, default)  # measured 0.008 and 0.071
    out = capsys.readouterr().out
    val = {w: 100 * cells[f"sgdd-led/cora/0.25/{w}/1"]["val_accs"][0] for w in (1, 10)}
    best = max(val, key=val.get)  # the weight is chosen on the validation split, and the table says which
    assert f"| sgdd-led | cora | 0.25 | {best} (chosen) |" in out and "(chosen)" not in out.replace(f"| {best} (chosen) |", "")
    stamp = results.stat().st_mtime_ns
    run_script("sgdd_ot_weight", args, monkeypatch)  # both cells stored: nothing is measured again
    assert results.stat().st_mtime_ns == stamp
    import sgdd_ot_weight

    off = {**cells["sgdd-led/cora/0.25/1/1"], "val_accs": [1.0]}  # the term off validates best: still not chosen
    text = sgdd_ot_weight.table({**cells, "sgdd-led/cora/0.25/0/1": off})
    assert "| 0 (term off) |" in text and f"| {best} (chosen) |" in text
    candidate = tmp_path / "ot-null.json"  # the released term with the candidate fix: recorded with each cell
    run_script("sgdd_ot_weight", ["--data-root", str(data_root), "--method", "sgdd", "--weights", "1", "--seeds", "0",
                                  "--epochs", "1", "--runs", "1", "--eval-epochs", "3", "--null-space", "--plan-mass", "even",
                                  "--results", str(candidate)], monkeypatch)
    assert json.loads(candidate.read_text())["sgdd/cora/0.25/1/0"]["formulation"] == {"ot_null_space": True, "plan_mass": "even"}


def test_sgdd_ot_probe_reads_the_term_with_and_without_the_null_space(data_root, monkeypatch, capsys):
    """The probe's term values at initialisation: projecting out the null space removes the 1/gamma directions
    (measured 111.04 -> 31.73), and even plan mass changes the transported covariance (27.14)."""
    values = {}
    for formulation, mass in (("ridge", "unit"), ("null", "unit"), ("null", "even")):
        run_script("sgdd_ot_probe", ["--data-root", str(data_root), "--formulation", formulation, "--plan-mass", mass,
                                     "--epochs", "1", "--every", "1"], monkeypatch)
        first = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"| {formulation} | {mass} | 1 | 0 |"))
        values[formulation, mass] = float(first.split("|")[-2])
    assert values["null", "unit"] < values["ridge", "unit"] - 50
    assert values["null", "even"] != pytest.approx(values["null", "unit"], abs=1.0)


def test_graph_table_records_each_condensed_cell_settings_and_prints_the_issue_targets(tmp_path, data_root, monkeypatch, capsys):
    """Each GCond/SGDD cell keeps the settings that made it (a default change, like an OT weight going from 1 to
    10, must not mix silently into one row), and the targets table compares SGDD with GCond from the cells."""
    results = tmp_path / "graph.json"
    args = ["--data-root", str(data_root), "--datasets", "cora", "--methods", "random,gcond,sgdd,gcond-x-release", "--reductions", "0.25",
            "--seeds", "0", "--epochs", "1", "--eval-epochs", "3", "--results", str(results), "--out", str(tmp_path / "runs")]
    run_script("graph_table", args, monkeypatch)
    cells = json.loads(results.read_text())
    assert cells["cora/sgdd/0.25/0"]["settings"]["ot_weight"] == 0.1 and cells["cora/sgdd/0.25/0"]["settings"]["beta"] == 0.5
    assert cells["cora/gcond/0.25/0"]["settings"]["pge_running_stats"] is False
    assert "settings" not in cells["cora/random/0.25/0"]
    release_x = cells["cora/gcond-x-release/0.25/0"]  # GCond-X the release's way: its own row, saved without edges
    assert release_x["isolated_nodes"] == release_x["nodes"] == 35
    assert json.loads((tmp_path / "runs" / "cora-gcond-x-release-0.25-0" / "run.json").read_text())["config"]["untrained_pge_matching"]
    out = capsys.readouterr().out
    gcond, sgdd = cells["cora/gcond/0.25/0"]["led_shift"], cells["cora/sgdd/0.25/0"]["led_shift"]
    assert f"{sgdd:.4f} vs {gcond:.4f} ({100 * abs(gcond - sgdd) / gcond:.1f}% {'lower' if sgdd <= gcond else 'HIGHER'})" in out
    assert "paper std 1.30" in out and "| 1 / 1 |" in out
    cells["cora/sgdd/0.25/1"] = {**cells["cora/sgdd/0.25/0"], "settings": {**cells["cora/sgdd/0.25/0"]["settings"], "ot_weight": 10.0}}
    results.write_text(json.dumps(cells))
    for seed in range(1, 5):  # GCond's row gets its five graphs: only then is it compared with the paper
        cells[f"cora/gcond/0.25/{seed}"] = cells["cora/gcond/0.25/0"]
    results.write_text(json.dumps(cells))
    run_script("graph_table", ["--results", str(results), "--table"], monkeypatch)
    assert "| cora | sgdd | 0.25 |" in (out := capsys.readouterr().out) and "2 (MIXED SETTINGS)" in out
    sgdd_row = next(line for line in out.splitlines() if line.startswith("| cora | sgdd | 0.25 |"))
    assert "not comparable yet" in sgdd_row or "no published number" in sgdd_row
    gcond_row = next(line for line in out.splitlines() if line.startswith("| cora | gcond | 0.25 |"))
    mean = 100 * float(np.mean(cells["cora/gcond/0.25/0"]["results"]["gcn"]["accs"]))
    assert f"| 79.8 +- 1.3 | {verdict(mean, 79.8, 1.3)} |" in gcond_row
    random_row = next(line for line in out.splitlines() if line.startswith("| cora | random | 0.25 |"))
    assert "| 63.6 +- 3.7 |" in random_row  # GCond Table 2's baselines sit beside ours too
    whole = 100 * float(np.mean(cells["cora/whole"]["accs"]))
    assert f"| cora | whole graph | - | {whole:.2f} | - | 81.2 +- 0.2 | {verdict(whole, 81.2, 0.2)} |" in out


def test_the_ledger_puts_the_graph_cells_beside_gcond_table_2(tmp_path):
    """REPRODUCTION.md's graph rows come from the graph table's stored cells: a verdict only once a row has its five
    graphs under one setting, the investigation beside a verdict outside the published std, Cora before CiteSeer."""
    from ledger_graph import graph_section, graph_table

    def cell(accs, settings=None):
        return {"results": {"gcn": {"accs": accs}}, "date": "2026-12-05", "led_shift": 0.3,
                **({"settings": settings} if settings else {})}

    gcond = {"epochs": 600, "matching_model": "sgc"}
    results = {**{f"cora/gcond/1/{s}": cell([0.80, 0.81, 0.80], gcond) for s in range(5)},  # 80.33 against 79.3 +- 0.3
               **{f"cora/kcenter/0.25/{s}": cell([0.64, 0.64, 0.64]) for s in range(4)},  # four of five graphs
               **{f"citeseer/sgdd/0.5/{s}": cell([0.70, 0.71, 0.72], {"epochs": 2000 if s else 1000}) for s in range(5)},
               "cora/whole": {"accs": [0.82, 0.83, 0.82]}}
    lines = graph_table(results).splitlines()
    rows = {tuple(c.strip() for c in line.split("|")[1:4]): line for line in lines[2:]}
    gcond_row = rows["gcond", "cora", "1"]
    assert "| 79.3 +- 0.3 |" in gcond_row and "| 80.33 +- 0.00 | 5 x 3 |" in gcond_row
    assert "above (+1.0); the published std (0.3) is the smallest of GCond's rows" in gcond_row
    assert "condensed 600 epochs" in gcond_row and "--methods gcond --reductions 1 --seeds 0,1,2,3,4" in gcond_row
    assert "not comparable yet" in rows["kcenter", "cora", "0.25"] and "4 x 3" in rows["kcenter", "cora", "0.25"]
    assert "whole-graph GCN" in rows["kcenter", "cora", "0.25"]
    assert "not comparable yet" in rows["sgdd", "citeseer", "0.5"]  # two settings in one row: never compared
    assert "GDEM (ICML 2024) Table 2" in rows["sgdd", "citeseer", "0.5"]  # the published std's source
    assert "| 81.2 +- 0.2 |" in rows["whole graph", "cora", "-"] and "above (+1.1)" in rows["whole graph", "cora", "-"]
    order = [line.split("|")[1:3] for line in lines[2:]]
    assert order.index([" gcond ", " cora "]) < order.index([" kcenter ", " cora "]) < order.index([" sgdd ", " citeseer "])
    assert "not measured: absent.json is absent" in graph_section(tmp_path / "absent.json")


def test_every_ledger_finding_names_a_row_the_ledger_has():
    """A finding keyed by a typo (or by a row since removed) would never be printed: each must name a real row."""
    import json

    import ledger
    from ledger_findings import GRAPH_FINDINGS
    from ledger_graph import GRAPH_RESULTS

    rows = {(row.method, row.dataset, row.size) for row in ledger.ROWS}
    assert set(ledger.FINDINGS) <= rows and ("forgetting", "fashion-mnist", 50) in ledger.FINDINGS
    assert {("whole", dataset, None) for dataset in ledger.WHOLE_FINDINGS} <= rows
    graph_rows = {(k.split("/")[0], k.split("/")[1], float(k.split("/")[2]))
                  for k in json.loads(GRAPH_RESULTS.read_text()) if k.count("/") == 3}
    assert set(GRAPH_FINDINGS) <= graph_rows


def test_ledger_pending_reads_a_make_in_progress_from_its_checkpoint(tmp_path, monkeypatch):
    """A set being made is shown at its checkpoint's iteration, with what is left at the row's measured speed."""
    import ledger

    from distillset.results import ResultsStore
    from distillset.runner import save_checkpoint

    monkeypatch.setattr(ledger, "SETS", tmp_path / "sets")
    row = ledger.Row("dc", "digits", 1, options={"iterations": 1000})
    made, making = row.folder(0), row.folder(1)
    made.mkdir(parents=True)
    (made / "synset.safetensors").write_bytes(b"")  # set_made looks for the file only
    (made / "run.json").write_text(json.dumps({"timings_s": {"seconds_per_iteration": 6.0}}))
    making.mkdir(parents=True)
    save_checkpoint(making / "checkpoint.safetensors", {"images": torch.zeros(1)}, 400, [1.0], {"iterations": 1000})
    store = ResultsStore(tmp_path / "results.json")
    assert ledger.pending([row], store)[1] == ("dc/digits/1/s1: set in progress, iteration 400 of 1000 checkpointed, "
                                               "about 60 min at 6.0 s an iteration: python benchmarks/ledger.py make "
                                               "--only dc/digits/1")
    (making / "checkpoint.safetensors").unlink()
    assert ledger.pending([row], store)[1].startswith("dc/digits/1/s1: set not made, about 1.7 h at 6.0 s an iteration")


def test_the_ledger_evaluates_a_stored_set_run_by_run_and_writes_verdicts(tmp_path, monkeypatch, digits):
    import ledger

    from distillset.results import ResultsStore

    row = ledger.Row("random", "digits", 1, seeds=(0,), networks=2, epochs=2)
    monkeypatch.setattr(ledger, "SETS", tmp_path / "sets")
    monkeypatch.setattr(ledger, "CHECKPOINTS", tmp_path / "checkpoints")  # never the repository's own folder
    monkeypatch.setattr(ledger, "ROWS", [row])
    ds.run_coreset("random", "digits", 1, row.folder(0), log=lambda m: None)
    store = ResultsStore(tmp_path / "results.json")
    two_sets = ledger.Row("random", "digits", 1, seeds=(0, 1), networks=2, epochs=2)
    assert ledger.pending([two_sets], store) == [  # what is left, set by set, with the command that continues it
        "random/digits/1/s0: 0 of 2 networks stored: python benchmarks/ledger.py evaluate --only random/digits/1",
        "random/digits/1/s1: set not made: python benchmarks/ledger.py make --only random/digits/1"]
    ledger.evaluate([row], None, "cpu", store)
    assert ledger.pending([row], store) == []
    cell = store.cells["random/digits/1/s0"]
    earlier = ResultsStore(tmp_path / "earlier.json")
    earlier.cells["random/digits/1/s0"] = {**cell, "protocol": {**cell["protocol"], "schedule": "earlier"}}
    assert "2 networks under the earlier lr schedule" in ledger.pending([row], earlier)[0]
    earlier.cells["random/digits/1/s0"] = {**cell, "runs": {"0": 0.9}, "seconds": 120.0}
    assert ledger.pending([row], earlier)[0].startswith("random/digits/1/s0: 1 of 2 networks stored, about 2 min at 2.0 min a network")
    assert sorted(cell["runs"]) == ["0", "1"] and cell["protocol"]["epochs"] == 2
    again = ResultsStore(tmp_path / "results.json")
    ledger.evaluate([row], None, "cpu", again)  # nothing left to run: the stored runs stay as they are
    assert again.cells["random/digits/1/s0"]["runs"] == cell["runs"]
    text = ledger.table(again)
    assert "| random | digits | 1 | - | - |" in text and "1 x 2" in text and "no published number" in text
    measured_row = next(line for line in text.splitlines() if line.startswith("| random | digits | 1 |"))
    assert "`distillset coreset --method random --dataset digits --ipc 1 --seed 0" in measured_row  # the exact commands
    assert "`python benchmarks/ledger.py evaluate --only random/digits/1`" in measured_row
    assert f"| {cell['date']}; cpu, " in measured_row  # when and on what it was measured
    monkeypatch.setattr(ledger, "ROWS", [ledger.Row("random", "digits", 1, seeds=(0,), networks=2, epochs=2, finding="the finding")])
    assert "; the finding |" in ledger.table(again)  # a below-paper cell's investigation sits beside its verdict
    assert ledger.sets_by_networks([{"runs": {"0": 0.9, "1": 0.9}}] * 2) == "2 x 2"
    assert ledger.sets_by_networks([{"runs": {str(i): 0.9 for i in range(10)}}, {"runs": {"0": 0.9}}]) == "2 sets: 10 + 1 networks"
    assert ledger.verdict(91.0, 91.7, 0.5) == "below (-0.7)"
    assert ledger.verdict(91.5, 91.7, 0.5) == "inside the published std"
    assert ledger.verdict(95.0, 91.7, 0.5, complete=False).startswith("not comparable")
    assert ledger.verdict(92.0, 91.7, None) == "above (+0.3; no published std)"


def _store_cells_shared(path: str, prefix: str, count: int) -> None:
    from distillset.results import ResultsStore

    store = ResultsStore(path)  # read once at start, as a ledger process does
    for i in range(count):
        store.put_shared(f"{prefix}/{i}", {"runs": {"0": i}})


def test_two_processes_storing_their_own_cells_keep_each_others(tmp_path):
    """`ledger.py evaluate --seeds` in two processes: each stores its cells as they end; none is lost to the other's
    stale copy (the plain `save` of a store read at start would keep only the last writer's)."""
    import multiprocessing

    from distillset.results import ResultsStore

    path = tmp_path / "results.json"
    ResultsStore(path, {"earlier/cell": {"runs": {"0": 0.5}}}).save()
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_store_cells_shared, args=(str(path), prefix, 25)) for prefix in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    cells = ResultsStore(path).cells
    assert sorted(cells) == sorted(["earlier/cell"] + [f"{p}/{i}" for p in ("a", "b") for i in range(25)])
    assert cells["b/24"] == {"runs": {"0": 24}}
    store = ResultsStore(path)
    live = {"runs": {}}
    store.put_shared("c/0", live)
    live["runs"]["0"] = 0.7  # the caller keeps filling the cell it stored: the store holds that same object
    store.put_shared("c/0", store.cells["c/0"])
    assert ResultsStore(path).cells["c/0"] == {"runs": {"0": 0.7}} and "a/0" in store.cells


def test_the_ledger_takes_only_the_named_sets_and_keeps_variants_apart(tmp_path):
    import ledger

    from distillset.results import ResultsStore

    variant = ledger.row_by_key("forgetting/mnist/1/never-learned-most")  # the row's method under Toneva's count
    assert variant.folder(0) == ledger.VARIANTS / "forgetting-mnist-ipc1-s0-never-learned-most" and variant.set_made(0)
    assert "--never-learned most --out benchmarks/results/ledger/variants/" in variant.command(0)
    assert variant not in ledger.ROWS and ledger.row_by_key("forgetting/mnist/1").options == {"never_learned": "zero"}
    store = ResultsStore(tmp_path / "results.json", {"forgetting/mnist/1/never-learned-most/s0": {
        "runs": {"0": 0.2}, "seconds": 1.0, "protocol": {"augment": "dc", "epochs": 1000, "schedule": "reference"}}})
    ledger.write(store, tmp_path / "REPRODUCTION.md")
    main, variants = (tmp_path / "REPRODUCTION.md").read_text().split("## Variants")
    assert "| 20.0 +- 0.0 |" in variants and "ranked first (Toneva et al.'s count)" in variants
    assert "| forgetting | mnist | 1 | 35.5 +- 5.6 | DC (ICLR 2021) Table 1 | not measured" in main  # the row: its own cells

    rows = [ledger.row_by_key("forgetting/fashion-mnist/1"), ledger.row_by_key("random/fashion-mnist/1")]
    assert [row.seeds for row in ledger.only_seeds(rows, "1")] == [(1,), (1,)]
    assert [row.seeds for row in ledger.only_seeds(rows, "4,5")] == [(4, 5)]  # random's six sets; forgetting has two
    for bad in ("7", "one", ","):
        with pytest.raises(ValueError, match="--seeds"):
            ledger.only_seeds(rows, bad)


def test_the_ledger_evaluates_a_dd_row_by_its_learned_steps(tmp_path, monkeypatch, digits):
    """The DD row is made with DD's published setting and evaluated as DD evaluates (its learned steps), run by run."""
    import ledger

    from distillset.results import ResultsStore

    dd = ledger.row_by_key("dd/mnist/10")
    assert not dd.gpu and dd.model == "lenet" and dd.evaluation == "learned-schedule"
    row = ledger.Row("dd", "digits", 2, seeds=(0,), networks=3, evaluation="learned-schedule",
                     options={"iterations": 2, "steps": 2, "epochs": 1, "batch_real": 50, "step_images": "fixed",
                              "network_init": "xavier", "model": "convnet-d2-w32"})
    monkeypatch.setattr(ledger, "SETS", tmp_path / "sets")
    monkeypatch.setattr(ledger, "CHECKPOINTS", tmp_path / "checkpoints")
    monkeypatch.setattr(ledger, "ROWS", [row])
    ledger.make([row], None, "cpu")
    store = ResultsStore(tmp_path / "results.json")
    ledger.evaluate([row], None, "cpu", store)
    cell = store.cells["dd/digits/2/s0"]
    assert sorted(cell["runs"]) == ["0", "1", "2"] and cell["protocol"]["evaluation"] == "learned-schedule"
    assert cell["protocol"]["steps"] == 2
    line = next(x for x in ledger.table(store).splitlines() if x.startswith("| dd | digits | 2 |"))
    assert "2 learned steps (DD's evaluation)" in line and "1 x 3" in line


def test_the_ledgers_whole_data_rows_test_the_forgetting_rows_feature_networks(tmp_path, monkeypatch, digits):
    """A whole-data row trains no network of its own: it tests the forgetting rows' feature network of each seed, which
    the cache then hands to the forgetting set (or the other way round), so the costliest training runs once."""
    import ledger

    from distillset.methods.feature_network import train_feature_network
    from distillset.results import ResultsStore
    from distillset.training import test_accuracy

    for dataset in ("mnist", "fashion-mnist"):
        whole = ledger.row_by_key(f"whole/{dataset}/all")
        forgetting = ledger.row_by_key(f"forgetting/{dataset}/1")
        assert whole.evaluation == "feature-network" and whole.seeds == forgetting.seeds and whole.epochs == 20
    monkeypatch.setenv("DISTILLSET_CACHE", str(tmp_path / "cache"))
    row = ledger.Row("whole", "digits", None, networks=1, augment="none", epochs=2, evaluation="feature-network")
    monkeypatch.setattr(ledger, "ROWS", [row])
    store = ResultsStore(tmp_path / "results.json")
    ledger.evaluate([row], None, "cpu", store)
    assert ledger.pending([row], store) == []
    test = ds.real_data(digits, "test")
    for seed in (0, 1):
        cell = store.cells[f"whole/digits/all/s{seed}"]
        assert cell["protocol"] == {"evaluation": "feature-network", "augment": "none", "epochs": 2, "schedule": "half",
                                    "batch_size": 256} and "compiled_runs" not in cell
        cached = train_feature_network(ds.real_data(digits, "train"), "convnet", 2, seed, log=None)  # from the cache
        assert cell["runs"] == {"0": test_accuracy(cached.model, test.images, test.labels)}
    logged = []
    ds.run_coreset("forgetting", "digits", 1, tmp_path / "forgetting", feature_epochs=2, log=logged.append)
    assert any("reusing the feature network cached" in m for m in logged)
    line = next(x for x in ledger.table(store).splitlines() if x.startswith("| whole | digits | all |"))
    assert "2 x 1" in line and "2 epochs, lr x0.1 from epoch 1 (the forgetting rows' feature networks)" in line
    assert "not measured" not in line and "earlier lr schedule" not in line


def test_the_ledger_refuses_a_kept_set_made_with_other_options(tmp_path, monkeypatch, digits):
    """The forgetting rows rank never-learned images at zero events (DeepCore's count, the nearest evidence of the
    DC paper's); a set kept from before, made with the method's default, is another protocol and is refused."""
    import ledger

    assert ledger.row_by_key("forgetting/mnist/1").options == {"never_learned": "zero"}
    assert "--never-learned zero" in ledger.row_by_key("forgetting/fashion-mnist/50").command(0)
    assert ledger.row_by_key("herding/mnist/1").options == {}
    monkeypatch.setenv("DISTILLSET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ledger, "SETS", tmp_path / "sets")
    ds.run_coreset("forgetting", "digits", 1, tmp_path / "sets" / "forgetting-digits-ipc1-s0", feature_epochs=2, log=print)
    row = ledger.Row("forgetting", "digits", 1, seeds=(0,), options={"never_learned": "zero", "feature_epochs": 2})
    with pytest.raises(SystemExit, match="made with never_learned='most', the row asks 'zero'"):
        ledger.make([row], None, "cpu")
    ledger.make([ledger.Row("forgetting", "digits", 1, seeds=(0,), options={"never_learned": "most", "feature_epochs": 2})],
                None, "cpu")  # the kept set is the row's: nothing to make


def test_ledger_trajectory_rows_make_and_evaluate_with_their_presets_network():
    """Tiny ImageNet's published settings name ConvNet-D4 (DATM throughout, MTT at ipc 50): the row's experts are
    trained on it, kept apart from ConvNet experts, and the set is evaluated on it."""
    import ledger

    datm = ledger.row_by_key("datm/tinyimagenet/10")
    assert datm.model == "convnet-d4" and "--model convnet-d4" in datm.experts_command()
    assert "convnet-d4" in datm.experts_folder().name
    mtt_small, mtt_large = ledger.row_by_key("mtt/tinyimagenet/1"), ledger.row_by_key("mtt/tinyimagenet/50")
    assert mtt_small.model == "convnet" and "--model" not in mtt_small.experts_command()
    assert mtt_small.experts_folder() != mtt_large.experts_folder()
    assert ledger.row_by_key("mtt/cifar10/1").model == "convnet"


def test_ledger_parity_rows_come_from_the_stored_evaluations(tmp_path, monkeypatch):
    import ledger

    def evaluation(accs):
        return json.dumps({"results": {"convnet": {"mean": float(np.mean(accs)), "std": float(np.std(accs)), "accs": accs}}})

    monkeypatch.setattr(ledger, "OFFICIAL", tmp_path)
    (tmp_path / "dc-official-eval.json").write_text(evaluation([0.70, 0.71]))
    (tmp_path / "dc-ours-eval.json").write_text(evaluation([0.69, 0.70]))
    (tmp_path / "dm-official-eval.json").write_text(evaluation([0.72, 0.72]))
    (tmp_path / "dm-ours-eval.json").write_text(evaluation([0.70, 0.70]))
    rows = ledger.parity_table().splitlines()
    assert rows[2] == "| dc | 70.50 +- 0.50 (2) | 69.50 +- 0.50 (2) | -1.00 | ours LOWER: investigate |"
    assert rows[3].startswith("| dsa | not measured")
    assert rows[4].endswith("| -2.00 | ours LOWER: investigate |")
    (tmp_path / "dm-ours-eval.json").write_text(evaluation([0.715, 0.725]))
    assert ledger.parity_table().splitlines()[4].endswith("| +0.00 | within one std |")


def test_sgdd_structure_imports_graph_table_cells_and_condenses_the_beta_ablation(tmp_path, data_root, monkeypatch, capsys):
    """The default-beta rows come from graph_table's stored cells (their graphs read back, their evaluations
    reused); the ablation's cells are condensed with the label-smoothness weight given, and neither is measured twice."""
    from distillset.graph.class_structure import class_structure
    from distillset.graph.synset import GraphSynSet

    table, out = tmp_path / "graph.json", tmp_path / "runs"
    run_script("graph_table", ["--data-root", str(data_root), "--datasets", "cora", "--methods", "sgdd", "--reductions", "0.25",
                               "--seeds", "0", "--epochs", "1", "--eval-epochs", "3", "--runs", "1", "--cross-arch",
                               "--results", str(table), "--out", str(out)], monkeypatch)
    results, kept = tmp_path / "structure.json", tmp_path / "structure-graphs"
    args = ["--data-root", str(data_root), "--betas", "0", "--seeds", "0", "--epochs", "1", "--runs", "1", "--eval-epochs", "3",
            "--import", f"{table}:{out}", "--results", str(results), "--out", str(kept)]
    run_script("sgdd_structure", args, monkeypatch)
    cells = json.loads(results.read_text())
    assert set(cells) == {"cora/sgdd/0.25/0/beta0.5", "cora/sgdd/0.25/0/beta0"}
    imported, ablation = cells["cora/sgdd/0.25/0/beta0.5"], cells["cora/sgdd/0.25/0/beta0"]
    assert imported["results"] == json.loads(table.read_text())["cora/sgdd/0.25/0"]["results"]
    graph = GraphSynSet.load(out / "cora-sgdd-0.25-0" / "synset.safetensors")
    assert imported["homophily"] == class_structure(graph.adjacency, graph.labels, 0.05)["homophily"]
    assert ablation["beta"] == 0 and ablation["epochs"] == 1 and len(ablation["results"]) == 7
    assert ablation["cpu"] == ds.environment()["cpu"]  # another CPU condenses another graph: each row names its own
    assert GraphSynSet.load(ablation["graph"]).config["beta"] == 0
    assert "| cora | sgdd | 0.25 | 0 |" in (text := capsys.readouterr().out) and "| cora | sgdd | 0.25 | 0.5 |" in text
    stamp = results.stat().st_mtime_ns
    run_script("sgdd_structure", args, monkeypatch)  # nothing new: neither cell is measured again nor the file rewritten
    assert results.stat().st_mtime_ns == stamp

    # --separate: the Table 3 GCN's two changes one at a time, on every row; a row whose graph is gone is condensed
    # again and must come out with the graph it was stored with.
    Path(ablation["graph"]).unlink()
    run_script("sgdd_structure", args + ["--separate"], monkeypatch)
    cells = json.loads(results.read_text())
    for row in cells.values():
        assert {"gcn@threshold", "gcn@dropout0"} <= set(row["results"]) and Path(row["graph"]).is_file()
    assert cells["cora/sgdd/0.25/0/beta0"]["results"]["gcn"] == ablation["results"]["gcn"]
    assert "| cora | sgdd | 0.25 | 0 |" in capsys.readouterr().out
    Path(ablation["graph"]).unlink()
    cells["cora/sgdd/0.25/0/beta0"]["homophily"] += 0.5  # as if another graph had been stored
    results.write_text(json.dumps(cells))
    with pytest.raises(SystemExit, match=f"differs from the stored row .* condensed on {re.escape(ds.environment()['cpu'])}, this is"):
        run_script("sgdd_structure", args + ["--separate"], monkeypatch)


def test_graph_table_adds_columns_to_a_stored_cell_without_remaking_its_graph(tmp_path, data_root, monkeypatch):
    """--cross-arch on a cell stored without it evaluates the stored graph with the new columns and keeps the cell's
    condensation time and date (the graph was reloaded from its finished run folder, not condensed again)."""
    results = tmp_path / "graph.json"
    args = ["--data-root", str(data_root), "--datasets", "cora", "--methods", "gcond", "--reductions", "0.25", "--seeds", "0",
            "--epochs", "1", "--eval-epochs", "3", "--runs", "1", "--results", str(results), "--out", str(tmp_path / "runs")]
    run_script("graph_table", args, monkeypatch)
    first = json.loads(results.read_text())["cora/gcond/0.25/0"]
    first["condense_seconds"] = 1234.5  # as if the condensation had been long: the extension must not overwrite it
    results.write_text(json.dumps({"cora/gcond/0.25/0": first, "cora/whole": json.loads(results.read_text())["cora/whole"]}))
    run_script("graph_table", [*args, "--cross-arch"], monkeypatch)
    extended = json.loads(results.read_text())["cora/gcond/0.25/0"]
    assert extended["condense_seconds"] == 1234.5 and extended["date"] == first["date"] and "columns_added" in extended
    assert "gcond-sgc@table3" in extended["results"] and extended["results"]["gcn"] == first["results"]["gcn"]
    assert extended["led_shift"] == first["led_shift"]
