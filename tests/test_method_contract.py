"""The method contract, checked for every registered method (in the spirit of scikit-learn's check_estimator).

Parametrised over ``list_methods()``: a method added to the registry is tested here without a new test.
Each method runs on tiny real data (digits for images, a small synthetic graph for graphs) with the options
its registration declares as ``tiny``: construct, initial_state, steps, a checkpoint written to disk and
restored into a FRESH engine that continues to the same tensors as an uninterrupted run, to_synset saved and
loaded back, and config refusals (unknown key, wrong type, out-of-range value) in one line naming the option.
"""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

import distillset as ds
from distillset.errors import DistillsetError
from distillset.methods.contract import constrained_fields
from distillset.methods.experts import ExpertConfig, train_experts
from distillset.runner import load_checkpoint, save_checkpoint

MODEL = "convnet-d2-w32"
SPECS = ds.list_methods()


def tiny_graph():
    """60 nodes, 3 classes, 12 features; edges mostly within a class; 10 training nodes per class."""
    from distillset.graph.data import GraphData, undirected_edges

    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(20)
    features = torch.rand(60, 12, generator=generator) + torch.nn.functional.one_hot(labels, 12).float()
    rows, cols = torch.randint(60, (2, 240), generator=generator)
    keep = (labels[rows] == labels[cols]) | (torch.rand(240, generator=generator) < 0.2)
    edge_index = undirected_edges(rows[keep].numpy(), cols[keep].numpy(), 60)
    order = torch.randperm(60, generator=generator)
    train = torch.cat([order[labels[order] == c][:10] for c in range(3)])
    rest = order[~torch.isin(order, train)]
    return GraphData("tiny-graph", features, edge_index, labels, train, rest[:15], rest[15:], 3)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, digits):
    experts = tmp_path_factory.mktemp("contract-experts")
    train_experts("digits", experts, ExpertConfig(model=MODEL, experts=2, epochs=3, lr=0.1), log=lambda m: None)
    return {"image": ds.real_data(digits, "train"), "graph": tiny_graph(), "experts": str(experts)}


def tiny_options(spec, inputs) -> dict:
    names = {f.name for f in fields(spec.config_class)}
    options = dict(spec.tiny)
    options.setdefault(spec.size, 2 if spec.size == "ipc" else 0.5)
    if "model" in names:
        options["model"] = MODEL
    if "feature_model" in names:
        options["feature_model"] = MODEL
    if "experts" in spec.requires:
        options["experts_dir"] = inputs["experts"]
    return options


def tensors_of(synset) -> dict[str, torch.Tensor]:
    names = ("images", "labels", "soft_labels", "lr", "features", "adjacency")
    return {n: getattr(synset, n) for n in names if getattr(synset, n, None) is not None}


def run(spec, data, config, steps: int):
    engine = spec.build(data, config)
    state = engine.initial_state()
    for _ in range(steps):
        engine.step(state)
    return engine, state


def test_the_registry_lists_every_method_once_with_its_declarations():
    keys = [(s.name, s.modality) for s in SPECS]
    assert len(keys) == len(set(keys))
    names = {s.name for s in SPECS}
    assert {"dc", "dsa", "dm", "mtt", "datm", "dd", "random", "herding", "kcenter", "forgetting", "dq", "gcond", "gcond-x",
            "sgdd"} <= names
    for spec in SPECS:
        assert spec.summary and spec.kind in ("condensation", "selection") and spec.modality in ("image", "graph")
        assert constrained_fields(spec.config_class), f"{spec.name} declares no constraint on any option"
        assert spec.size in {f.name for f in fields(spec.config_class)}
    with pytest.raises(ValueError, match="registered twice"):
        ds.methods.registry.register_method("dc", kind="condensation", modality="image", summary="x",
                                            config=SPECS[0].config_class)(lambda data, config: None)
    assert ds.get_method("random", "graph").modality == "graph"
    with pytest.raises(DistillsetError, match="the dataset decides"):
        ds.get_method("random")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.modality}-{s.name}")
def test_method_contract(spec, inputs, tmp_path):
    data = inputs[spec.modality]
    config = spec.make_config(tiny_options(spec, inputs))

    engine, state = run(spec, data, config, 0)
    steps = min(2, engine.total_steps)
    assert state.iteration == 0 and isinstance(state.named_tensors(), dict)
    for i in range(steps):
        loss = engine.step(state)
        assert state.iteration == i + 1 and len(state.losses) == i + 1 and isinstance(loss, float)
    whole = engine.to_synset(state)

    # interrupted after steps - 1, written to disk, restored into a fresh engine, continued
    first, partial = run(spec, data, config, steps - 1)
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, partial.named_tensors(), partial.iteration, partial.losses, {"method": spec.name})
    fresh = spec.build(data, config)
    restored = fresh.restore(*load_checkpoint(path, {"method": spec.name}))
    assert restored.iteration == steps - 1
    while restored.iteration < steps:
        fresh.step(restored)
    resumed = fresh.to_synset(restored)
    expected, got = tensors_of(whole), tensors_of(resumed)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), f"{spec.name}: '{name}' differs after a checkpoint round trip"

    # the set saves and loads back
    whole.validate()
    whole.save(tmp_path / "set.safetensors")
    loaded = type(whole).load(tmp_path / "set.safetensors")
    for name, value in tensors_of(loaded).items():
        assert torch.equal(value, expected[name])


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.modality}-{s.name}")
def test_bad_options_are_refused_in_one_line_naming_the_option(spec, inputs):
    options = tiny_options(spec, inputs)

    def refused(bad: dict, *words: str) -> None:
        with pytest.raises(DistillsetError) as info:
            spec.make_config({**options, **bad})
        message = str(info.value)
        assert "\n" not in message and all(w in message for w in words), message

    refused({"no_such_option": 1}, "unknown option", "no_such_option")
    field = constrained_fields(spec.config_class)[0]
    refused({field.name: [1]}, f"option '{field.name}'")
    meta = field.metadata
    if meta.get("low") is not None:
        refused({field.name: meta["low"] - 1}, f"option '{field.name}'", "must be")
    else:
        refused({field.name: "not-a-choice"}, f"option '{field.name}'", "must be one of")
    # the engine validates a config built by hand, too
    bad = spec.make_config(options)
    setattr(bad, field.name, [1])
    with pytest.raises(DistillsetError, match=f"option '{field.name}'"):
        spec.build(inputs[spec.modality], bad)


def test_methods_command_lists_every_method(capsys):
    from distillset.cli import main

    assert main(["methods"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == len(SPECS) and all(any(line.startswith(s.name) for line in listed) for s in SPECS)
