"""GCond (Jin et al., ICLR 2022): condensing a graph by per-class gradient matching.

Learned: node features X' (initialised from real training nodes of each class; class counts follow the
training label distribution times the reduction r) and, for ``gcond``, a structure generator (PGE):
A'_ij = sigmoid(MLP([x'_i, x'_j])), symmetrised, zero diagonal. ``gcond-x`` learns features only
(A' = 0, so the GNN sees only self loops).

Each epoch draws a fresh matching network (SGC by default). For ``outer_loop`` steps: per class c,
the gradient of the cross-entropy on up to 256 sampled real training nodes of c is matched to the
gradient on the synthetic nodes of c (dense propagation over A'), with DC's distance, each class's term
weighted by its synthetic count over the largest class's (as GCond's reference; 1 on balanced splits). The real side
reads only what the sampled nodes need (``sampling.RealGraphView``): SGC from features propagated
once, GCN on the nodes' exact L-hop computation subgraph, or with ``fanout`` a sampled one for large
graphs (at most ``fanout`` neighbours per node and hop, reweighted to stay unbiased). The
update goes to the structure for ``structure_epochs`` epochs, then to the features for
``feature_epochs`` epochs, alternating. Between outer steps the network trains ``inner_loop`` steps on
the synthetic graph. The first layer of the PGE is applied per node (W1 x_i + W2 x_j), so memory is
n'^2 x hidden, never n'^2 x 2F.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DistillsetError
from ..fileio import atomic_write, atomic_write_json
from ..methods.gradient_matching import distance
from ..seeding import make_generator
from .data import GraphData
from .models import Propagation, build_gnn
from .sampling import RealGraphView
from .synset import GraphSynSet


@dataclass
class GCondConfig:
    reduction: float = 0.5  # fraction of the labelled training nodes
    structure: bool = True  # False: gcond-x
    epochs: int = 600
    outer_loop: int = 20
    inner_loop: int = 15
    lr_features: float = 1e-4
    lr_structure: float = 1e-4
    lr_model: float = 0.01
    structure_epochs: int = 10
    feature_epochs: int = 40
    matching_model: str = "sgc"
    batch_real: int = 256
    pge_hidden: int = 128
    pge_layers: int = 3
    # False: the PGE's BatchNorm always normalises with the statistics of the current pair set (all n^2 pairs are
    # the batch, so A' is a deterministic function of X'), as GCond's reference code does. True: running
    # statistics in eval mode (feature epochs, inner loops, the saved graph), this library's behaviour before
    # 2026-11-22, which left A' stale once features moved and gave dense, class-mixing graphs (BENCHMARKS.md).
    pge_running_stats: bool = False
    threshold: float = 0.01  # A' entries below this are zeroed in the saved graph (GCond's sparsification)
    # SGDD only: weight of the optimal-transport LED term. At 1 its gradient on the generator was ~1% of the
    # matching loss's (Cora r=0.25), so it did not steer the structure at all; 10 gives it ~7% and halved the
    # LED shift at unchanged accuracy, while 100 and 1000 cost 6-10 points on one seed (BENCHMARKS.md).
    ot_weight: float = 10.0
    coordinates: int = 8  # SGDD only: graphon coordinate dimensions
    led_bins: int = 16  # SGDD only: spectral bins of the LED term
    led_sigma: float = 0.1  # SGDD only: their width on the eigenvalue axis
    fanout: int = 0  # real-graph neighbours sampled per node and hop for a GCN matching network (0: all, exact)
    # True: class c's matching term is weighted by its synthetic node count / the largest class's, as GCond's
    # reference does, so a rare class (the anomalies of an imbalanced graph) does not weigh as much as a common
    # one. The Planetoid splits are balanced (20 per class), where every weight is 1. False: unweighted sum.
    class_weighted: bool = True
    seed: int = 0


class StructureGenerator(nn.Module):
    """PGE: an MLP over node pairs; the first layer is split so the pair input is never materialised.

    ``running_stats=False`` (the default) normalises with the statistics of the current pairs in every mode."""

    def __init__(self, features: int, hidden: int = 128, layers: int = 3, running_stats: bool = False) -> None:
        super().__init__()
        self.left, self.right = nn.Linear(features, hidden), nn.Linear(features, hidden, bias=False)
        self.body = nn.ModuleList()
        for _ in range(layers - 2):
            self.body.append(nn.Sequential(nn.BatchNorm1d(hidden, track_running_stats=running_stats), nn.ReLU(),
                                           nn.Linear(hidden, hidden)))
        self.out = nn.Sequential(nn.BatchNorm1d(hidden, track_running_stats=running_stats), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        pairs = (self.left(x)[:, None, :] + self.right(x)[None, :, :]).reshape(n * n, -1)
        for block in self.body:
            pairs = block(pairs)
        logits = self.out(pairs).reshape(n, n)
        adjacency = torch.sigmoid((logits + logits.T) / 2)
        return adjacency * (1 - torch.eye(n, device=x.device))


def class_counts(data: GraphData, reduction: float) -> list[int]:
    """Synthetic nodes per class: the training label distribution times ``reduction`` (at least one each)."""
    if not 0 < reduction <= 1:
        raise DistillsetError(f"--reduction must be in (0, 1], got {reduction}")
    train_labels = data.labels[data.train]
    counts = torch.bincount(train_labels, minlength=data.num_classes)
    if (counts == 0).any():
        raise DistillsetError(f"class(es) {torch.nonzero(counts == 0).flatten().tolist()} have no training node")
    return [max(1, int(round(reduction * int(c)))) for c in counts]


class GCond:
    def __init__(self, data: GraphData, config: GCondConfig, method: str = "gcond") -> None:
        self.data, self.config, self.method = data, config, method
        self.counts = class_counts(data, config.reduction)
        self.real_view = RealGraphView(data.features, Propagation.from_edges(data.edge_index, data.num_nodes),
                                       fanout=config.fanout or None)
        self.train_by_class = [data.train[data.labels[data.train] == c] for c in range(data.num_classes)]
        gen = make_generator(config.seed, method, "init")
        picks = [pool[torch.randperm(pool.numel(), generator=gen)[:n].to(pool.device)] if n <= pool.numel()
                 else pool[torch.randint(pool.numel(), (n,), generator=gen).to(pool.device)]
                 for pool, n in zip(self.train_by_class, self.counts)]
        self.labels = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in enumerate(self.counts)]).to(data.features.device)
        self.features = data.features[torch.cat(picks)].clone().requires_grad_(True)
        self.pge = None
        if config.structure:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(2**62, (1,), generator=make_generator(config.seed, method, "pge"))))
                self.pge = self.make_generator().to(data.features.device)
        self.opt_features = torch.optim.Adam([self.features], lr=config.lr_features)
        self.opt_structure = torch.optim.Adam(self.pge.parameters(), lr=config.lr_structure) if self.pge is not None else None
        self.epoch = 0
        self.losses: list[float] = []

    def make_generator(self) -> nn.Module:
        """The structure generator (GCond's PGE; SGDD overrides it with its graphon)."""
        cfg = self.config
        return StructureGenerator(self.data.features.shape[1], cfg.pge_hidden, cfg.pge_layers, cfg.pge_running_stats)

    def structure_loss(self, adjacency: torch.Tensor) -> torch.Tensor:
        """An extra loss on the generated structure (none for GCond; SGDD's optimal-transport term)."""
        return adjacency.new_zeros(())

    def adjacency(self) -> torch.Tensor:
        n = self.features.shape[0]
        if self.pge is None:
            return torch.zeros(n, n, device=self.features.device)
        return self.pge(self.features)

    def step(self) -> float:
        """One epoch: a fresh matching network, ``outer_loop`` matching updates with inner training between."""
        cfg, data = self.config, self.data
        epoch = self.epoch
        generator = make_generator(cfg.seed, self.method, "epoch", epoch)
        model = build_gnn(cfg.matching_model, data.features.shape[1], data.num_classes, 256,
                          make_generator(cfg.seed, self.method, "model", epoch), data.features.device, dropout=0.0)
        params = [p for p in model.parameters()]
        model_opt = torch.optim.Adam(params, lr=cfg.lr_model)
        update_structure = self.pge is not None and epoch % (cfg.structure_epochs + cfg.feature_epochs) < cfg.structure_epochs
        total = 0.0
        adjacency = None
        for outer in range(cfg.outer_loop):
            if adjacency is None:
                if self.pge is not None:
                    self.pge.train(update_structure)
                adjacency = self.adjacency()
            syn_graph = Propagation.from_dense(adjacency)
            model.train()
            batches = [pool[torch.randperm(pool.numel(), generator=generator)[:cfg.batch_real].to(pool.device)]
                       for pool in self.train_by_class]
            out_real = self.real_view.outputs(model, torch.cat(batches), generator).split([b.numel() for b in batches])
            out_syn = model(self.features, syn_graph)
            loss = self.features.new_zeros(())
            offset = 0
            largest = max(self.counts)
            for c, n in enumerate(self.counts):
                idx = batches[c]
                g_real = torch.autograd.grad(F.cross_entropy(out_real[c], data.labels[idx]), params, retain_graph=True)
                g_real = [g.detach() for g in g_real]
                g_syn = torch.autograd.grad(F.cross_entropy(out_syn[offset:offset + n], self.labels[offset:offset + n]), params,
                                            create_graph=True, retain_graph=True)
                weight = n / largest if cfg.class_weighted else 1.0
                loss = loss + weight * distance(g_real, list(g_syn), "ours")
                offset += n
            if update_structure:
                loss = loss + self.structure_loss(adjacency)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the matching loss became {loss.item()} at epoch {epoch + 1}")
            optimizer = self.opt_structure if update_structure else self.opt_features
            self.opt_features.zero_grad(set_to_none=True)
            if self.opt_structure is not None:
                self.opt_structure.zero_grad(set_to_none=True)
            # Only the tensors this phase updates get gradients: the PGE's weight gradients are skipped in
            # feature epochs, the features' in structure epochs (same updates, about a third less backward).
            loss.backward(inputs=list(self.pge.parameters()) if update_structure else [self.features])
            optimizer.step()
            total += float(loss.detach())
            adjacency = None
            if outer == cfg.outer_loop - 1:
                break
            if self.pge is not None and not update_structure:
                # Feature epochs: the PGE is frozen and in eval mode for matching and inner training alike, so
                # the next matching's adjacency (with its graph) is also the inner loop's: one forward, not two.
                adjacency = self.adjacency()
                fixed_graph = Propagation.from_dense(adjacency.detach())
            else:
                with torch.no_grad():
                    if self.pge is not None:
                        self.pge.eval()
                    fixed_graph = Propagation.from_dense(self.adjacency().detach())
            fixed_x = self.features.detach()
            for _ in range(cfg.inner_loop):
                out = model(fixed_x, fixed_graph)
                inner = F.cross_entropy(out, self.labels)
                model_opt.zero_grad(set_to_none=True)
                inner.backward()
                model_opt.step()
        self.epoch += 1
        value = total / cfg.outer_loop
        self.losses.append(value)
        return value

    def to_synset(self, dataset: str) -> GraphSynSet:
        with torch.no_grad():
            if self.pge is not None:
                self.pge.eval()
            adjacency = self.adjacency().detach().float().cpu()
        adjacency = torch.where(adjacency < self.config.threshold, torch.zeros_like(adjacency), adjacency)
        adjacency = (adjacency + adjacency.T) / 2
        return GraphSynSet(self.features.detach().float().cpu().clone(), adjacency, self.labels.cpu().clone(), dataset,
                           self.data.num_classes, self.method, self.config.reduction, {"method": self.method, **asdict(self.config)})

    # ------------------------------------------------------------------------------------ checkpoints
    def state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {"features": self.features.detach().cpu()}
        tensors.update(_optimizer_tensors(self.opt_features, "opt_features"))
        if self.pge is not None:
            tensors.update({f"pge.{k}": v.detach().cpu() for k, v in self.pge.state_dict().items()})
            tensors.update(_optimizer_tensors(self.opt_structure, "opt_structure"))
        return {k: v.contiguous() for k, v in tensors.items()}

    def load_state(self, tensors: dict[str, torch.Tensor], epoch: int, losses: list[float]) -> None:
        device = self.features.device
        with torch.no_grad():
            self.features.copy_(tensors["features"].to(device))
        _load_optimizer(self.opt_features, tensors, "opt_features", device)
        if self.pge is not None:
            self.pge.load_state_dict({k[4:]: v.to(device) for k, v in tensors.items() if k.startswith("pge.")})
            _load_optimizer(self.opt_structure, tensors, "opt_structure", device)
        self.epoch, self.losses = epoch, list(losses)


def _optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    out = {}
    for i, (_, state) in enumerate(optimizer.state_dict()["state"].items()):
        for key, value in state.items():
            out[f"{prefix}.{i}.{key}"] = torch.as_tensor(value).detach().cpu().clone()
    return out


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, prefix: str, device) -> None:
    state_dict = optimizer.state_dict()
    for i in range(len(state_dict["param_groups"][0]["params"])):
        entries = {k.split(".")[-1]: v for k, v in tensors.items() if k.startswith(f"{prefix}.{i}.")}
        if entries:
            state_dict["state"][i] = {k: (v.to(device) if k != "step" else v) for k, v in entries.items()}
    optimizer.load_state_dict(state_dict)


GRAPH_METHODS = ("gcond", "gcond-x", "sgdd")


def make_engine(method: str, data: GraphData, config: GCondConfig) -> GCond:
    if method == "sgdd":
        from .sgdd import SGDD

        return SGDD(data, config, config.ot_weight, config.coordinates, config.led_bins, config.led_sigma)
    return GCond(data, config, method)


def run_gcond(method: str, dataset: str, reduction: float, out: str | Path, epochs: int | None = None, seed: int = 0,
              data_root=None, device: str | None = "cpu", checkpoint_every: int = 20, stop_after: int | None = None,
              log=print, options: dict | None = None) -> GraphSynSet | None:
    """Condense ``dataset`` into ``out`` (synset.safetensors, run.json); resumes from out/checkpoint.safetensors.

    ``options`` overrides fields of GCondConfig (e.g. ``{"matching_model": "gcn", "fanout": 10}``)."""
    from safetensors.torch import save_file

    from ..runner import resolve_device
    from ..synset import read_safetensors
    from .data import load_graph

    if method not in GRAPH_METHODS:
        raise DistillsetError(f"unknown graph condensation method '{method}'; use {', '.join(GRAPH_METHODS)}")
    config = GCondConfig(reduction=reduction, structure=method != "gcond-x", seed=seed)
    if epochs is not None:
        config.epochs = epochs
    for key, value in (options or {}).items():
        if key not in GCondConfig.__dataclass_fields__ or key in ("reduction", "structure", "seed", "epochs"):
            raise DistillsetError(f"unknown graph condensation option '{key}'")
        setattr(config, key, value)
    out = Path(out)
    identity = {"command": "condense", "method": method, "dataset": dataset, **asdict(config)}
    record_path = out / "run.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("status") == "complete" and record.get("config") == identity:
            log(f"{out} already holds this finished run; nothing to do")
            return GraphSynSet.load(out / "synset.safetensors")
    torch_device = resolve_device(device)
    data = load_graph(dataset, data_root).to(torch_device)
    engine = make_engine(method, data, config)
    checkpoint = out / "checkpoint.safetensors"
    if checkpoint.is_file():
        tensors, meta = read_safetensors(checkpoint)
        if json.loads(meta.get("config", "null")) != identity:
            raise DistillsetError(f"{checkpoint} belongs to another configuration; choose another --out or delete it")
        engine.load_state(tensors, int(meta["epoch"]), json.loads(meta["losses"]))
        log(f"resuming from {checkpoint} at epoch {engine.epoch}/{config.epochs}")
    out.mkdir(parents=True, exist_ok=True)

    def save_checkpoint() -> None:
        tensors = engine.state_tensors()
        meta = {"epoch": str(engine.epoch), "losses": json.dumps(engine.losses), "config": json.dumps(identity)}
        atomic_write(checkpoint, lambda tmp: save_file(tensors, tmp, metadata=meta))

    start, done = time.perf_counter(), 0
    while engine.epoch < config.epochs:
        try:
            loss = engine.step()
        except FloatingPointError as exc:
            raise DistillsetError(f"{exc}; lower the learning rates") from None
        done += 1
        if engine.epoch % checkpoint_every == 0 or engine.epoch == config.epochs:
            save_checkpoint()
        if engine.epoch % max(1, config.epochs // 10) == 0:
            log(f"{method} epoch {engine.epoch}/{config.epochs}: matching loss {loss:.4f}")
        if stop_after is not None and done >= stop_after and engine.epoch < config.epochs:
            save_checkpoint()
            return None
    synset = engine.to_synset(data.name)
    synset.save(out / "synset.safetensors")
    atomic_write_json(record_path, {"status": "complete", "config": identity, "metrics": {"loss_per_epoch": engine.losses},
                                    "timings_s": {"condense_this_call": time.perf_counter() - start},
                                    "synset": {"nodes": len(synset), "edges": int((synset.adjacency > 0).sum()) // 2}})
    checkpoint.unlink(missing_ok=True)
    log(f"wrote {out / 'synset.safetensors'} ({len(synset)} nodes) and {record_path}")
    return synset
