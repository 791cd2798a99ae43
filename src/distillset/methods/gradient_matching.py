"""Dataset Condensation with Gradient Matching (DC, ICLR 2021) and its DSA variant (ICML 2021).

Each outer iteration samples a fresh randomly initialised network. For ``outer_loop`` steps, the
gradient of the cross-entropy on a real batch of each class (256 images) is matched to the gradient
on that class's synthetic images; the summed distance updates the synthetic images (SGD, momentum
0.5). Between steps the network is trained on the current synthetic set for ``inner_loop`` epochs.
DSA applies the same sampled transform to a class's real and synthetic batch.

Speed: on a GPU the real images of all classes go through ONE forward and ONE backward pass that
stops at the layer outputs (autograd then skips every weight gradient), and the per-class weight
gradients are formed from the captured layer inputs and output gradients, one class slice at a time,
by the same convolution-backward kernels autograd would call (in groups of classes that fit the memory
budget of :mod:`.memory`, so CIFAR-100 does not need ~50 GB). This is exact because no layer mixes
samples: instance/group/layer norm work per image, and BatchNorm is frozen during matching (as in the
paper). On the CPU one pass per class is faster (the 2560-image activations overflow the caches), so
that is the default there. Either way, parameters that the distance ignores (1-D tensors under
"ours") are never differentiated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import DSA, strategy_for
from ..data.real import RealData
from ..device import to_device
from ..distributed import all_reduce_gradients, broadcast_parameters
from ..errors import DistillsetError
from ..models import build_model
from ..seeding import make_generator
from .class_batches import ClassBatches
from .contract import EvaluationSpec, check_config, option
from .image_state import MatchingState, SyntheticImageMethod
from .memory import class_groups
from .registry import register_method

# (outer_loop, inner_loop) per images-per-class, from the paper
PAPER_LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}
DISTANCES = ("ours", "mse", "cos")


def loops_for_ipc(ipc: int) -> tuple[int, int]:
    """The paper's curriculum; other ipc values: outer = min(ipc, 50), inner = clamp(round(500/ipc), 1, 50).

    The rule reproduces the listed settings within one inner epoch (it keeps about 500 synthetic-image
    passes of inner training per outer step) and extends them smoothly (ipc 5 -> (5, 50), 100 -> (50, 5)).
    """
    if ipc in PAPER_LOOPS:
        return PAPER_LOOPS[ipc]
    return min(ipc, 50), max(1, min(50, round(500 / ipc)))


@dataclass
class GradientMatchingConfig:
    """DC's options (DSA's are the same with ``dsa`` on and real initial images: :class:`DSAConfig`)."""

    ipc: int = option(10, "images per class", low=1)
    model: str = option("convnet", "the training network (any zoo model)")
    iterations: int = option(1000, "outer iterations, each with a fresh network", low=1)
    dsa: bool = option(False, "augment real and synthetic batches with the same DSA transform")
    dsa_strategy: str | None = option(None, "DSA transforms, e.g. color_crop_cutout_scale_rotate (default: per dataset)")
    init: str = option("noise", "initial images", choices=("noise", "real"))
    distance: str = option("ours", "gradient distance", choices=DISTANCES)
    lr_img: float | None = option(None, "image learning rate (default 0.1; 0.01 with an MLP)", low=0, low_open=True)
    momentum_img: float = option(0.5, "image SGD momentum", low=0, high=1)
    lr_net: float = option(0.01, "learning rate of the inner training of the network", low=0, low_open=True)
    batch_real: int = option(256, "real images per class and matching step", low=1)
    batch_train: int = option(256, "minibatch of the inner training", low=1)
    outer_loop: int | None = option(None, "matching steps per iteration (default: the paper's, per ipc)", low=1)
    inner_loop: int | None = option(None, "inner training epochs between matching steps (default: the paper's)", low=0)
    bn_real_per_class: int = option(16, "real images per class that set a BatchNorm network's statistics", low=1)
    compile: bool = option(True, "torch.compile the real-gradient passes (one-off ~20 s; ~1.8x faster steps on CPU)")
    guide_models: str = option("", "pre-trained-model guidance: pool folders / members (methods.guidance); '' = none")
    guide_weight: float = option(1.0, "weight of the guides' cross-entropy added to the matching loss", low=0)
    guide_per_iteration: int = option(1, "pool members sampled per iteration", low=1)
    seed: int = option(0, "the seed of every random draw")

    def resolved(self) -> "GradientMatchingConfig":
        outer, inner = loops_for_ipc(self.ipc)
        lr = self.lr_img if self.lr_img is not None else (0.01 if self.model.startswith("mlp") else 0.1)
        return replace(self, outer_loop=self.outer_loop or outer, inner_loop=self.inner_loop if self.inner_loop is not None else inner,
                       lr_img=lr)


@dataclass
class DSAConfig(GradientMatchingConfig):
    """DSA (Zhao & Bilen, ICML 2021): gradient matching under siamese augmentation, from real images."""

    dsa: bool = option(True, "augment real and synthetic batches with the same DSA transform")
    init: str = option("real", "initial images", choices=("noise", "real"))


def distance(g_real: list[torch.Tensor], g_syn: list[torch.Tensor], kind: str) -> torch.Tensor:
    """Gradient distance: "ours" (layer-wise, per output row 1 - cosine), "mse" or "cos" (one global cosine)."""
    if kind == "ours":
        total = g_syn[0].new_zeros(())
        for gr, gs in zip(g_real, g_syn):
            if gr.dim() == 1:
                continue
            gr, gs = gr.reshape(gr.shape[0], -1), gs.reshape(gs.shape[0], -1)
            cos = (gr * gs).sum(-1) / (gr.norm(dim=-1) * gs.norm(dim=-1) + 1e-6)
            total = total + (1 - cos).sum()
        return total
    flat_r = torch.cat([g.reshape(-1) for g in g_real])
    flat_s = torch.cat([g.reshape(-1) for g in g_syn])
    if kind == "mse":
        return ((flat_r - flat_s) ** 2).sum()
    return 1 - (flat_r * flat_s).sum() / (flat_r.norm() * flat_s.norm() + 1e-6)


def matched_parameters(net: nn.Module, kind: str) -> list[tuple[str, nn.Parameter]]:
    """The parameters whose gradients enter the distance (1-D ones contribute nothing to "ours")."""
    return [(n, p) for n, p in net.named_parameters() if p.requires_grad and (kind != "ours" or p.dim() > 1)]


def freeze_batchnorm(net: nn.Module, real: RealData, per_class: int, generator: torch.Generator) -> None:
    """BatchNorm networks: set the statistics from ``per_class`` real images of every class, then freeze them.

    The paper's code runs one train-mode pass with momentum 0.1, which leaves the running statistics at
    90% of their initial values; we set them to the statistics of that batch exactly (momentum 1).
    """
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    idx = real.sample_every_class(per_class, generator)
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 1.0
    net.train()
    with torch.no_grad():
        net(real.images[idx])
    for m, momentum in zip(bns, saved):
        m.momentum = momentum
        m.eval()


class _Capture:
    """Forward hooks that keep the inputs and outputs of the layers whose weights are matched."""

    def __init__(self, modules: list[nn.Module]) -> None:
        self.inputs: dict[nn.Module, torch.Tensor] = {}
        self.outputs: dict[nn.Module, torch.Tensor] = {}
        self.versions: dict[nn.Module, int] = {}
        self.handles = [m.register_forward_hook(self._hook) for m in modules]

    def _hook(self, module, args, output) -> None:
        self.inputs[module] = args[0]
        self.outputs[module] = output
        self.versions[module] = output._version

    def modified_in_place(self) -> bool:
        """True when a later layer (an in-place activation right after a layer) overwrote a captured output."""
        return any(self.outputs[m]._version != v for m, v in self.versions.items())

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def per_class_real_gradients(net: nn.Module, x: torch.Tensor, y: torch.Tensor, counts: list[int],
                             params: list[tuple[str, nn.Parameter]]) -> list[list[torch.Tensor]] | None:
    """Gradients of each class's mean cross-entropy w.r.t. ``params``, for images grouped by class.

    Returns None when some matched parameter is not the weight or bias of a Conv2d/Linear layer; the
    caller then falls back to one backward pass per class.
    """
    owners: dict[int, tuple[nn.Module, str]] = {}
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            for kind in ("weight", "bias"):
                p = getattr(module, kind)
                if p is not None:
                    owners[id(p)] = (module, kind)
    if any(id(p) not in owners for _, p in params):
        return None
    modules = list(dict.fromkeys(owners[id(p)][0] for _, p in params))
    capture = _Capture(modules)
    try:
        out = net(x)
    finally:
        capture.close()
    if capture.modified_in_place():
        return None
    # the mean over each class is a per-sample weight of 1/count on a summed loss
    weights = torch.cat([torch.full((n,), 1.0 / n, device=x.device) for n in counts])
    loss = (F.cross_entropy(out, y, reduction="none") * weights).sum()
    grad_out = dict(zip(modules, torch.autograd.grad(loss, [capture.outputs[m] for m in modules])))
    bounds = [0]
    for n in counts:
        bounds.append(bounds[-1] + n)
    result: list[list[torch.Tensor]] = []
    with torch.no_grad():  # the real gradients are targets: no graph through them
        for c in range(len(counts)):
            result.append(_class_slice_gradients(params, owners, grad_out, capture.inputs, bounds[c], bounds[c + 1]))
    return result


def _class_slice_gradients(params, owners, grad_out, inputs, lo: int, hi: int) -> list[torch.Tensor]:
    """Weight/bias gradients of one class from its rows of the captured layer inputs and output gradients."""
    grads = []
    for _, p in params:
        module, kind = owners[id(p)]
        g, inp = grad_out[module][lo:hi], inputs[module][lo:hi].detach()
        if kind == "bias":
            grads.append(g.sum(dim=(0, 2, 3)) if g.dim() == 4 else g.reshape(-1, g.shape[-1]).sum(0))
        elif isinstance(module, nn.Conv2d):
            grads.append(torch.nn.grad.conv2d_weight(inp, p.shape, g, module.stride, module.padding, module.dilation, module.groups))
        else:
            grads.append(g.reshape(-1, g.shape[-1]).T @ inp.reshape(-1, inp.shape[-1]))
    return grads


class CompiledClassLoss:
    """The class-batch loss as a torch.compile'd function of (parameters, buffers, images, labels).

    Parameters are inputs, not constants, so every iteration's fresh network reuses one compiled
    graph; inductor fuses norm, activation and pooling, which are memory-bound on a CPU (measured
    1.7x faster per class pass on 2 cores; BENCHMARKS.md). Only first-order gradients go through it:
    the synthetic side needs double backward, which compiled graphs do not support, and stays eager.
    """

    def __init__(self, net: nn.Module) -> None:
        import copy

        self.template = copy.deepcopy(net)

        def loss(params, buffers, x, y):
            return F.cross_entropy(torch.func.functional_call(self.template, (params, buffers), (x,)), y)

        # static shapes first; a second batch size (a class smaller than batch_real) recompiles ONCE with a dynamic
        # batch dimension, instead of once per size until the recompile limit (digits: 10 sizes, ~200 s)
        self.loss = torch.compile(loss, dynamic=None)

    def __call__(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        for mine, theirs in zip(self.template.modules(), net.modules()):
            mine.training = theirs.training  # BatchNorm is frozen per step; keep the graph's mode in step
        return self.loss(dict(net.named_parameters()), dict(net.named_buffers()), x, y)


def looped_real_gradients(net, x, y, counts, params, class_loss=None) -> list[list[torch.Tensor]]:
    """One forward and backward per class (``class_loss``: a compiled loss to use instead of eager)."""
    out, start = [], 0
    for n in counts:
        xs, ys = x[start:start + n], y[start:start + n]
        loss = class_loss(net, xs, ys) if class_loss is not None else F.cross_entropy(net(xs), ys)
        out.append([g.detach() for g in torch.autograd.grad(loss, [p for _, p in params])])
        start += n
    return out


TINY = {"iterations": 2, "compile": False, "batch_real": 16}


@register_method("dc", kind="condensation", modality="image", config=GradientMatchingConfig, tiny=TINY,
                 evaluation=EvaluationSpec(augment="dc"),
                 summary="gradient matching with a curriculum of fresh networks (Zhao, Mopuri & Bilen, ICLR 2021)")
@register_method("dsa", kind="condensation", modality="image", config=DSAConfig, tiny=TINY,
                 evaluation=EvaluationSpec(augment="dsa"),
                 summary="gradient matching under differentiable siamese augmentation (Zhao & Bilen, ICML 2021)")
class GradientMatching(SyntheticImageMethod, ClassBatches):
    """DC / DSA as a step function over a :class:`MatchingState`; the driver runs the iterations."""

    def __init__(self, real: RealData, config: GradientMatchingConfig, batched: bool | None = None) -> None:
        """``batched``: per-class real gradients from one pass over all classes (True), one pass per class
        (False), or None: batched on CUDA, per class on the CPU, where one 2560-image pass measured ~1.5x
        slower than ten 256-image passes (memory traffic; BENCHMARKS.md)."""
        self.real = real
        self.config = check_config(replace(config)).resolved()
        self.check_dsa_options()
        self.batched = batched if batched is not None else real.device.type == "cuda"
        self.setup_real_pass()  # the memory budget of a batched real pass (methods.memory)
        real.check_ipc(self.config.ipc)
        self.dsa = DSA(self.config.dsa_strategy or strategy_for(real.name)) if self.config.dsa else None
        probe = build_model(self.config.model, real.shape, real.num_classes)
        if not matched_parameters(probe, self.config.distance):
            raise DistillsetError(f"model '{self.config.model}' has no parameters to match gradients of")
        self.method = "dsa" if self.config.dsa else "dc"
        self._compiled: CompiledClassLoss | None = None
        self.compile_error: str | None = None
        self.setup_guidance()

    # ------------------------------------------------------------------------------------- step
    def step(self, state: MatchingState) -> float:
        """One outer iteration (a fresh network, outer_loop matching steps, inner training); returns the mean loss."""
        cfg, real = self.config, self.real
        k = real.num_classes
        it = state.iteration
        generator = make_generator(cfg.seed, self.method, "iteration", it)
        net = build_model(cfg.model, real.shape, k, make_generator(cfg.seed, self.method, "network", it), real.device)
        net.train()
        params = matched_parameters(net, cfg.distance)
        images, optimizer = self.image_optimizer(state)
        net_optimizer = torch.optim.SGD(net.parameters(), lr=cfg.lr_net)
        losses = []
        for outer in range(cfg.outer_loop):
            freeze_batchnorm(net, real, cfg.bn_real_per_class, generator)
            loss = self.matching_loss(net, params, images, state.labels, generator)
            loss = loss + self.guidance_loss(images, state.labels, it, outer)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            loss_value = all_reduce_gradients(images, loss)  # under torchrun: the sum over every rank's classes
            if not math.isfinite(loss_value):  # checked after the reduction, so every rank stops, none waits alone
                raise FloatingPointError(f"the matching loss became {loss_value} at iteration {it + 1} (outer step {outer + 1})")
            optimizer.step()
            losses.append(loss_value / k)
            if outer == cfg.outer_loop - 1:
                break
            self._train_network(net, net_optimizer, images.detach(), state.labels, generator)
            broadcast_parameters(net)  # every rank trained the same network; make it bitwise the same (GPU kernels)
        return self.commit(state, images, optimizer, sum(losses) / len(losses))

    def matching_loss(self, net, params, images, labels, generator) -> torch.Tensor:
        """Sum of the per-class distances over this process's classes (all of them outside torchrun); the batches
        come from :meth:`ClassBatches.class_batch`, so the result does not depend on the number of ranks."""
        cfg, ipc = self.config, self.config.ipc
        batch = self.class_batch(images, labels, generator)
        if batch is None:  # more ranks than classes: a zero that still reaches the images, so backward and the reduction run
            return (images * 0).sum()
        total = images.new_zeros(())
        grads_real = self._batched(net, batch.x_real, batch.y_real, batch.counts, params) if self.batched else None
        if grads_real is None:
            grads_real = self._looped(net, batch.x_real, batch.y_real, batch.counts, params)
        for i in range(len(batch.classes)):
            sl = slice(i * ipc, (i + 1) * ipc)
            loss_syn = F.cross_entropy(net(batch.x_syn[sl]), batch.y_syn[sl])
            grads_syn = torch.autograd.grad(loss_syn, [p for _, p in params], create_graph=True)
            total = total + distance(grads_real[i], list(grads_syn), cfg.distance)
        return total

    def _batched(self, net, x, y, counts, params) -> list[list[torch.Tensor]] | None:
        """Per-class real gradients from batched passes over groups of classes that fit the memory budget
        (exact: no layer mixes images); None when the model needs the per-class path."""
        result, start = [], 0
        for lo, hi in class_groups(counts, self.per_image_bytes(net, x), self.memory_budget):
            stop = start + sum(counts[lo:hi])
            part = per_class_real_gradients(net, x[start:stop], y[start:stop], counts[lo:hi], params)
            if part is None:
                return None
            result += part
            start = stop
        return result

    def _looped(self, net, x, y, counts, params) -> list[list[torch.Tensor]]:
        """Per-class real gradients, compiled when asked; a compiler failure falls back to eager for good."""
        compiled = self._compiled_loss(net)
        if compiled is None:
            return looped_real_gradients(net, x, y, counts, params)
        try:
            return looped_real_gradients(net, x, y, counts, params, compiled)
        except Exception as exc:  # no C++ compiler, unsupported op, ...: the eager path computes the same thing
            self.compile_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            self.config.compile = False
            return looped_real_gradients(net, x, y, counts, params)

    def _compiled_loss(self, net: nn.Module) -> CompiledClassLoss | None:
        """The compiled class loss when ``compile`` is on; built once, reused for every fresh network."""
        if not self.config.compile:
            return None
        if self._compiled is None:
            self._compiled = CompiledClassLoss(net)
        return self._compiled

    def _train_network(self, net, optimizer, images, labels, generator) -> None:
        cfg = self.config
        n = images.shape[0]
        net.train()  # BatchNorm was frozen for matching; it trains normally in between, as in the paper
        for _ in range(cfg.inner_loop):
            order = to_device(torch.randperm(n, generator=generator), images.device)
            for start in range(0, n, cfg.batch_train):
                b = order[start:start + cfg.batch_train]
                x = images[b]
                if self.dsa is not None:
                    x = self.dsa(x, generator)
                loss = F.cross_entropy(net(x), labels[b])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
