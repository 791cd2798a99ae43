"""GCond (Jin et al., ICLR 2022): condensing a graph by per-class gradient matching.

Learned: node features X' (initialised from real training nodes of each class; class counts follow the
training label distribution times the reduction r) and, for ``gcond``, a structure generator (PGE):
A'_ij = sigmoid(MLP([x'_i, x'_j])), symmetrised, zero diagonal. ``gcond-x`` learns features only
(A' = 0, so the GNN sees only self loops), as the paper defines it; ``untrained_pge_matching`` runs it as the
release does (matched through the PGE at its random initialisation, which never moves; saved without edges).

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
n'^2 x hidden, never n'^2 x 2F. With the SGC both the matched gradients and the inner training use SGC's
closed-form cross-entropy gradient (``sgc_closed_form``: no double backward, no per-step autograd), which
equals autograd's up to rounding and saves about a sixth of a Cora SGDD run's time (BENCHMARKS).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DistillsetError
from ..methods.contract import EvaluationSpec, State, check_config, option
from ..methods.gradient_matching import distance
from ..methods.registry import register_method
from ..seeding import make_generator
from .data import GraphData
from .models import SGC, Propagation, build_gnn
from .sampling import RealGraphView, propagated_features
from .sgc_closed_form import SGCAdamTrainer, weight_gradient
from .synset import GraphSynSet

GRAPH_EVALUATION = EvaluationSpec(epochs=600)  # GCond's: a GCN trained 600 epochs, the epoch chosen on the real validation split


@dataclass
class GCondConfig:
    """GCond's options, as its paper and reference code set them."""

    METHOD: ClassVar[str] = "gcond"

    reduction: float = option(0.5, "fraction of the labelled training nodes kept", low=0, low_open=True, high=1)
    structure: bool = option(True, "learn a structure (False: GCond-X, features only)")
    epochs: int = option(600, "condensation epochs, each with a fresh matching network", low=1)
    outer_loop: int = option(20, "matching steps per epoch", low=1)
    inner_loop: int = option(15, "training steps of the matching network between matching steps", low=0)
    lr_features: float = option(1e-4, "Adam learning rate of the node features", low=0, low_open=True)
    lr_structure: float = option(1e-4, "Adam learning rate of the structure generator", low=0, low_open=True)
    lr_model: float = option(0.01, "Adam learning rate of the matching network", low=0, low_open=True)
    structure_epochs: int = option(10, "epochs updating the structure, alternating with feature epochs", low=1)
    feature_epochs: int = option(40, "epochs updating the features", low=1)
    matching_model: str = option("sgc", "the GNN whose gradients are matched", choices=("sgc", "gcn"))
    batch_real: int = option(256, "real training nodes sampled per class and matching step", low=1)
    pge_hidden: int = option(128, "hidden width of the structure generator", low=1)
    pge_layers: int = option(3, "layers of the structure generator", low=2)
    # False: the PGE's BatchNorm always normalises with the statistics of the current pair set (all n^2 pairs are
    # the batch, so A' is a deterministic function of X'), as GCond's reference code does. True: running
    # statistics in eval mode (feature epochs, inner loops, the saved graph), this library's behaviour before
    # 2026-11-22, which left A' stale once features moved and gave dense, class-mixing graphs (BENCHMARKS.md).
    pge_running_stats: bool = option(False, "BatchNorm running statistics in the structure generator (not GCond's)")
    threshold: float = option(0.01, "A' entries below this are zeroed in the saved graph (GCond's sparsification)", low=0)
    fanout: int = option(0, "real-graph neighbours sampled per node and hop for a GCN matching network (0: all, exact)", low=0)
    # True: class c's matching term is weighted by its synthetic node count / the largest class's, as GCond's
    # reference does, so a rare class (the anomalies of an imbalanced graph) does not weigh as much as a common
    # one. The Planetoid splits are balanced (20 per class), where every weight is 1. False: unweighted sum.
    class_weighted: bool = option(True, "weigh each class's matching term by its synthetic share (GCond's reference)")
    # GCond-X as GCond's release runs it (--lr_adj 0): the features are matched through the adjacency of the PGE at
    # its random initialisation, which never moves, and are not updated in the 10 of every 50 epochs the release
    # spends stepping that PGE with lr 0; only the saved graph drops the edges. Off: the paper's GCond-X, A' = I
    # (no edges) in matching and evaluation alike.
    untrained_pge_matching: bool = option(False, "gcond-x only: match through an untrained PGE, as GCond's release runs GCond-X")
    seed: int = option(0, "the seed of every random draw")


@dataclass
class GCondXConfig(GCondConfig):
    """GCond-X: the features alone are learned; the synthetic graph has no edges (the GNN sees self loops)."""

    METHOD: ClassVar[str] = "gcond-x"

    structure: bool = option(False, "learn a structure (False: GCond-X, features only)")


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


def gcond_class_order(data: GraphData, reduction: float) -> list[tuple[int, int]]:
    """GCond's synthetic label layout (``generate_labels_syn``): (class, nodes) in its order.

    Classes are taken from the least to the most frequent among the training nodes (ties in the order each
    class first appears in node order); each gets floor(r * count) nodes, at least one, and the last (most
    frequent) class gets what is left of floor(r * n_train), so the total is GCond's exactly. A condensed graph
    published by GCond lists its nodes in this order.
    """
    if not 0 < reduction <= 1:
        raise DistillsetError(f"--reduction must be in (0, 1], got {reduction}")
    train_labels = data.labels[data.train].cpu()
    counts = torch.bincount(train_labels, minlength=data.num_classes)
    if (counts == 0).any():
        raise DistillsetError(f"class(es) {torch.nonzero(counts == 0).flatten().tolist()} have no training node")
    first_seen = {int(c): i for i, c in reversed(list(enumerate(train_labels.tolist())))}
    order = sorted(range(data.num_classes), key=lambda c: (int(counts[c]), first_seen[c]))
    total = int(train_labels.numel() * reduction)
    layout = [(c, max(int(int(counts[c]) * reduction), 1)) for c in order[:-1]]
    last = total - sum(n for _, n in layout)
    if last < 1:
        raise DistillsetError(f"reduction {reduction} leaves no node for class {order[-1]}: use a larger --reduction")
    return layout + [(order[-1], last)]


def class_counts(data: GraphData, reduction: float) -> list[int]:
    """Synthetic nodes per class (indexed by class), by GCond's rule (:func:`gcond_class_order`)."""
    counts = dict(gcond_class_order(data, reduction))
    return [counts[c] for c in range(data.num_classes)]


TINY = {"epochs": 2, "outer_loop": 2, "inner_loop": 1, "pge_hidden": 16, "batch_real": 16}


@register_method("gcond", kind="condensation", modality="graph", config=GCondConfig, size="reduction", tiny=TINY,
                 evaluation=GRAPH_EVALUATION,
                 summary="graph condensation: gradient matching of a GNN, features and a pairwise structure generator (Jin et al., ICLR 2022)")
@register_method("gcond-x", kind="condensation", modality="graph", config=GCondXConfig, size="reduction", tiny=TINY,
                 evaluation=GRAPH_EVALUATION, summary="GCond with learned node features only, no edges (Jin et al., ICLR 2022)")
class GCond:
    """GCond / GCond-X under the method contract. The live tensors (features, generator, optimisers) are the
    engine's; the state holds them by name, and a state from elsewhere (a checkpoint) is loaded into them."""

    divergence_hint = "lower the learning rates (lr_features, lr_structure)"

    def __init__(self, data: GraphData, config: GCondConfig) -> None:
        config = check_config(replace(config))
        self.data, self.config, self.method = data, config, config.METHOD
        if config.fanout and config.matching_model != "gcn":
            raise DistillsetError("fanout samples the neighbourhoods a GCN reads; SGC needs none (its propagation is computed "
                                  "once): set matching_model gcn (--model gcn) or drop fanout (--fanout)")
        self.counts = class_counts(data, config.reduction)
        self.real_view = RealGraphView(data.features, Propagation.from_edges(data.edge_index, data.num_nodes),
                                       fanout=config.fanout or None)
        self.train_by_class = [data.train[data.labels[data.train] == c] for c in range(data.num_classes)]
        gen = make_generator(config.seed, self.method, "init")
        picks = [pool[torch.randperm(pool.numel(), generator=gen)[:n].to(pool.device)] if n <= pool.numel()
                 else pool[torch.randint(pool.numel(), (n,), generator=gen).to(pool.device)]
                 for pool, n in zip(self.train_by_class, self.counts)]
        self.labels = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in enumerate(self.counts)]).to(data.features.device)
        self.features = data.features[torch.cat(picks)].clone().requires_grad_(True)
        if config.structure and config.untrained_pge_matching:
            raise DistillsetError("untrained_pge_matching is GCond-X's (--method gcond-x); gcond trains its structure generator")
        self.pge = None
        if config.structure or config.untrained_pge_matching:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(2**62, (1,), generator=make_generator(config.seed, self.method, "pge"))))
                self.pge = self.make_generator().to(data.features.device)
        self.opt_features = torch.optim.Adam([self.features], lr=config.lr_features)
        self.opt_structure = torch.optim.Adam(self.pge.parameters(), lr=config.lr_structure) if config.structure else None
        self.epoch = 0
        self.losses: list[float] = []
        self._live: State | None = None  # the state whose tensors the live objects hold

    @property
    def total_steps(self) -> int:
        return self.config.epochs

    def initial_state(self) -> State:
        self._live = State(self.state_tensors(), self.epoch, list(self.losses))
        return self._live

    def restore(self, tensors: dict[str, torch.Tensor], iteration: int, losses: list[float]) -> State:
        self.load_state(tensors, iteration, losses)
        self._live = State(self.state_tensors(), iteration, list(losses))
        return self._live

    def _bind(self, state: State) -> None:
        if state is not self._live:
            self.restore(state.named_tensors(), state.iteration, state.losses)
            self._live = state

    def make_generator(self) -> nn.Module:
        """The structure generator (GCond's PGE; SGDD overrides it with its graphon)."""
        cfg = self.config
        return StructureGenerator(self.data.features.shape[1], cfg.pge_hidden, cfg.pge_layers, cfg.pge_running_stats)

    def structure_loss(self, adjacency: torch.Tensor) -> torch.Tensor:
        """An extra loss on the generated structure in structure epochs (none for GCond; SGDD's optimal-transport term)."""
        return adjacency.new_zeros(())

    def regularization_loss(self, adjacency: torch.Tensor) -> torch.Tensor:
        """An extra loss in every epoch, structure and feature (none for GCond; SGDD's label smoothness)."""
        return adjacency.new_zeros(())

    def adjacency(self) -> torch.Tensor:
        n = self.features.shape[0]
        if self.pge is None:
            return torch.zeros(n, n, device=self.features.device)
        return self.pge(self.features)

    def step(self, state: State) -> float:
        """One epoch: a fresh matching network, ``outer_loop`` matching updates with inner training between."""
        self._bind(state)
        value = self._epoch()
        state.tensors, state.iteration, state.losses = self.state_tensors(), self.epoch, list(self.losses)
        return value

    def _epoch(self) -> float:
        cfg, data = self.config, self.data
        epoch = self.epoch
        generator = make_generator(cfg.seed, self.method, "epoch", epoch)
        model = build_gnn(cfg.matching_model, data.features.shape[1], data.num_classes, 256,
                          make_generator(cfg.seed, self.method, "model", epoch), data.features.device, dropout=0.0)
        params = [p for p in model.parameters()]
        # SGC (GCond's default) has its gradients in closed form, for matching and inner training (sgc_closed_form)
        closed_form = isinstance(model, SGC)
        inner_trainer = SGCAdamTrainer(model, cfg.lr_model) if closed_form else None
        model_opt = None if inner_trainer is not None else torch.optim.Adam(params, lr=cfg.lr_model)
        structure_phase = self.pge is not None and epoch % (cfg.structure_epochs + cfg.feature_epochs) < cfg.structure_epochs
        update_structure = structure_phase and self.opt_structure is not None
        frozen_phase = structure_phase and not update_structure  # untrained_pge_matching: nothing is updated
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
            sizes = [b.numel() for b in batches]
            if closed_form:
                real = self.real_view.propagated(model.hops)[torch.cat(batches)].split(sizes)
                syn = propagated_features(self.features, syn_graph, model.hops)
            else:
                real = self.real_view.outputs(model, torch.cat(batches), generator).split(sizes)
                syn = model(self.features, syn_graph)
            loss = self.features.new_zeros(())
            offset = 0
            largest = max(self.counts)
            for c, n in enumerate(self.counts):
                real_labels, syn_labels = data.labels[batches[c]], self.labels[offset:offset + n]
                if closed_form:  # dL/dW only: the distance skips the 1-D bias
                    g_real = [weight_gradient(real[c], real_labels, model)]
                    g_syn = [weight_gradient(syn[offset:offset + n], syn_labels, model)]
                else:
                    g_real = [g.detach() for g in torch.autograd.grad(F.cross_entropy(real[c], real_labels), params,
                                                                     retain_graph=True)]
                    g_syn = list(torch.autograd.grad(F.cross_entropy(syn[offset:offset + n], syn_labels), params,
                                                     create_graph=True, retain_graph=True))
                weight = n / largest if cfg.class_weighted else 1.0
                loss = loss + weight * distance(g_real, g_syn, "ours")
                offset += n
            loss = loss + self.regularization_loss(adjacency)
            if update_structure:
                loss = loss + self.structure_loss(adjacency)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the matching loss became {loss.item()} at epoch {epoch + 1}")
            optimizer = self.opt_structure if update_structure else self.opt_features
            self.opt_features.zero_grad(set_to_none=True)
            if self.opt_structure is not None:
                self.opt_structure.zero_grad(set_to_none=True)
            if not frozen_phase:
                # Only the tensors this phase updates get gradients: the PGE's weight gradients are skipped in
                # feature epochs, the features' in structure epochs (same updates, about a third less backward).
                loss.backward(inputs=list(self.pge.parameters()) if update_structure else [self.features])
                optimizer.step()
            total += float(loss.detach())
            adjacency = None
            if outer == cfg.outer_loop - 1:
                break
            if self.pge is not None and (not update_structure or not cfg.pge_running_stats):
                # The next matching's adjacency (with its graph) is also the inner loop's: one forward, not two. In
                # feature epochs the PGE is frozen (eval mode for both); in structure epochs its BatchNorm reads the
                # current pairs' statistics in either mode (the default), so A'(theta) after the step is one value.
                adjacency = self.adjacency()
                fixed_graph = Propagation.from_dense(adjacency.detach())
            else:
                with torch.no_grad():
                    if self.pge is not None:
                        self.pge.eval()
                    fixed_graph = Propagation.from_dense(self.adjacency().detach())
            fixed_x = self.features.detach()
            if inner_trainer is not None:
                inner_trainer.train(fixed_x, fixed_graph, self.labels, cfg.inner_loop)
                continue
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

    def to_synset(self, state: State) -> GraphSynSet:
        self._bind(state)
        with torch.no_grad():
            if self.pge is not None:
                self.pge.eval()
            adjacency = self.adjacency().detach().float().cpu()
        if not self.config.structure:  # GCond-X saves no edges (also when it matched through an untrained PGE)
            adjacency = torch.zeros_like(adjacency)
        adjacency = torch.where(adjacency < self.config.threshold, torch.zeros_like(adjacency), adjacency)
        adjacency = (adjacency + adjacency.T) / 2
        return GraphSynSet(self.features.detach().float().cpu().clone(), adjacency, self.labels.cpu().clone(), self.data.name,
                           self.data.num_classes, self.method, self.config.reduction, {"method": self.method, **asdict(self.config)})

    # ------------------------------------------------------------------------------------ checkpoints
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The live tensors by name (no copies: the checkpoint writer copies them to the CPU)."""
        tensors = {"features": self.features.detach()}
        tensors.update(_optimizer_tensors(self.opt_features, "opt_features"))
        if self.pge is not None:
            tensors.update({f"pge.{k}": v.detach() for k, v in self.pge.state_dict().items()})
        if self.opt_structure is not None:
            tensors.update(_optimizer_tensors(self.opt_structure, "opt_structure"))
        return tensors

    def load_state(self, tensors: dict[str, torch.Tensor], epoch: int, losses: list[float]) -> None:
        device = self.features.device
        with torch.no_grad():
            self.features.copy_(tensors["features"].to(device))
        _load_optimizer(self.opt_features, tensors, "opt_features", device)
        if self.pge is not None:
            self.pge.load_state_dict({k[4:]: v.to(device) for k, v in tensors.items() if k.startswith("pge.")})
        if self.opt_structure is not None:
            _load_optimizer(self.opt_structure, tensors, "opt_structure", device)
        self.epoch, self.losses = epoch, list(losses)


def _optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    out = {}
    for i, (_, state) in enumerate(optimizer.state_dict()["state"].items()):
        for key, value in state.items():
            out[f"{prefix}.{i}.{key}"] = torch.as_tensor(value).detach().clone()
    return out


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, prefix: str, device) -> None:
    state_dict = optimizer.state_dict()
    for i in range(len(state_dict["param_groups"][0]["params"])):
        entries = {k.split(".")[-1]: v for k, v in tensors.items() if k.startswith(f"{prefix}.{i}.")}
        if entries:
            state_dict["state"][i] = {k: (v.to(device) if k != "step" else v) for k, v in entries.items()}
    optimizer.load_state_dict(state_dict)
