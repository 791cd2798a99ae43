"""SGC's cross-entropy gradient in closed form: GCond's matching gradients and inner loop without autograd.

GCond (and SGDD on its loop) matches the gradients of an SGC, one linear layer on H = S^K X with S the
GCN-normalised adjacency, and trains that SGC between matchings with ``inner_loop`` Adam steps on the frozen
synthetic graph. For mean cross-entropy over n nodes the gradient has a closed form:

    logits = H W^T + b,   P = softmax(logits),   G = (P - Y) / n,
    dL/dW = G^T H,        dL/db = sum_i G_i.

Matching: the layer-wise distance uses dL/dW only (biases are 1-D and skipped), so a class's real gradient is
G_real^T H_real from the real graph's propagated features, and its synthetic gradient G_syn^T H_syn is an
ordinary differentiable expression in H_syn = S'^K X' (thus in the features and the generated adjacency).
The outer update then back-propagates through plain matrix products instead of autograd's double backward
through ``autograd.grad(create_graph=True)``.

Inner loop: H is computed once per loop (not once per step, as a forward pass through the layer would), and
each step is three small matrix products and the Adam update with no autograd graph. Autograd's per-call
overhead dominates tensors as small as Cora's 35-node graphs, which is what this avoids. The update is
torch's Adam (no weight decay, no AMSGrad) written with the same operations in the same order.

Both equal autograd's gradients up to floating-point rounding (autograd multiplies X W^T before propagating,
and sums in another order); the tests compare them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .models import SGC, Propagation
from .sampling import propagated_features


def logit_residual(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
    """G = (softmax(H W^T + b) - Y) / n: the gradient of mean cross-entropy with respect to the logits."""
    return (torch.softmax(hidden @ weight.T + bias, dim=1) - one_hot) / one_hot.shape[0]


def weight_gradient(hidden: torch.Tensor, labels: torch.Tensor, model: SGC) -> torch.Tensor:
    """dL/dW = G^T H of mean cross-entropy for the SGC's current weights (held fixed: no gradient flows into
    them), differentiable in ``hidden``."""
    weight, bias = model.lin.weight.detach(), model.lin.bias.detach()
    one_hot = F.one_hot(labels, weight.shape[0]).to(hidden.dtype)
    return logit_residual(hidden, weight, bias, one_hot).T @ hidden


class SGCAdamTrainer:
    """Adam on one SGC's weight and bias, stepped with the closed-form gradient (module docstring). The moments
    persist across calls to :meth:`train`, as one ``torch.optim.Adam`` does across GCond's inner loops."""

    def __init__(self, model: SGC, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.model, self.lr, self.betas, self.eps = model, lr, betas, eps
        self.params = [model.lin.weight, model.lin.bias]
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    @torch.no_grad()
    def train(self, features: torch.Tensor, graph: Propagation, labels: torch.Tensor, steps: int) -> None:
        """``steps`` full-batch Adam steps of mean cross-entropy on (features, graph, labels)."""
        hidden = propagated_features(features, graph, self.model.hops)
        weight, bias = self.params
        one_hot = F.one_hot(labels, weight.shape[0]).to(hidden.dtype)
        for _ in range(steps):
            residual = logit_residual(hidden, weight, bias, one_hot)
            self._adam([residual.T @ hidden, residual.sum(0)])

    def _adam(self, grads: list[torch.Tensor]) -> None:
        beta1, beta2 = self.betas
        self.steps += 1
        bias_correction1 = 1 - beta1 ** self.steps
        bias_correction2_sqrt = (1 - beta2 ** self.steps) ** 0.5
        step_size = self.lr / bias_correction1
        for param, grad, exp_avg, exp_avg_sq in zip(self.params, grads, self.exp_avg, self.exp_avg_sq):
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)
