"""Stochastic Diagonal Levenberg-Marquardt (LeCun et al. 1998, Sec. II-C and Appendix C).

Each parameter w_k gets its own step eps_k = eta / (mu + h_kk), where h_kk estimates the diagonal
second derivative of the loss with respect to w_k (Gauss-Newton, back-propagated with squares). h_kk
is re-estimated on a few hundred patterns before each pass and held fixed during it; the weights then
change after every pattern: w_k <- w_k - eps_k dE_p/dw_k.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .layers import squash, squash_derivative


def gauss_newton_diagonal(
    trunk: list[tuple[str, nn.Module]], x: torch.Tensor, output_curvature: float = 2.0
) -> dict[nn.Parameter, torch.Tensor]:
    """The paper's estimate of the diagonal second derivatives h_kk, averaged over the patterns ``x``.

    Appendix C: second derivatives are back-propagated like gradients but with squares, dropping
    off-diagonal terms and f'': into a layer's input, d2E/dx_k^2 = sum_i u_ik^2 d2E/da_i^2 and then
    d2E/da_k^2 = f'(a_k)^2 d2E/dx_k^2; at a weight, d2E/du^2 = sum over the connections sharing it of
    x_j^2 d2E/da_i^2. At the RBF output, for Eq. 8, d2E/dx_j^2 = 2 (``output_curvature``). For Eq. 9 we use
    the same 2, the Gauss-Newton term of its y_D part, and drop the curvature of the log term, which can
    be negative. DEVIATION(D9)

    Each layer's pre-activation is linear in its input and in its weights, so the vector-Jacobian
    product of ``layer.linear(x^2, W, b)`` with respect to W gives the weight rule and that of
    ``layer.linear(t, W^2, None)`` with respect to t gives the input rule. One backward pass through
    a "shadow" graph built from those products yields every h_kk; its forward values are never used.

    Args:
        trunk: the squashed layers in order, each with ``linear(x, weight, bias)``, ``weight`` and ``bias``;
            a layer with a 2-d weight (fully connected) flattens its input.
        x: (N, ...) patterns.
        output_curvature: d2E/dx_j^2 at each output of the last layer.

    Returns:
        {parameter: tensor of its shape}: the per-pattern average over the N patterns.
    """
    inputs, pre = [], []
    with torch.no_grad():  # the real forward pass: each layer's input and pre-activation
        h = x
        for _, layer in trunk:
            if isinstance(layer, nn.Linear):
                h = h.flatten(1)
            inputs.append(h)
            pre.append(layer(h))
            h = squash(pre[-1])
    shadows = {p: torch.zeros_like(p, requires_grad=True) for _, layer in trunk for p in (layer.weight, layer.bias)}
    t = None
    for (_, layer), x_in, a in zip(trunk, inputs, pre, strict=True):
        s = layer.linear(x_in**2, shadows[layer.weight], shadows[layer.bias])
        if t is not None:
            if isinstance(layer, nn.Linear):
                t = t.flatten(1)
            s = s + layer.linear(t, layer.weight.detach() ** 2, None)
        t = squash_derivative(a) ** 2 * s
    grads = torch.autograd.grad(t, list(shadows.values()), grad_outputs=torch.full_like(t, output_curvature))
    return {p: g / x.shape[0] for p, g in zip(shadows, grads, strict=True)}


class SDLM(torch.optim.Optimizer):
    """Stochastic Diagonal Levenberg-Marquardt as a torch optimizer.

    Args:
        params: parameters or parameter groups.
        lr: the global learning rate eta (the paper's schedule starts at 5e-4).
        mu: damping added to h_kk, so that the step stays bounded where the curvature is tiny (0.02).

    Call :meth:`estimate_hessian` (or :meth:`set_hessian`) before the first :meth:`step`.
    """

    def __init__(self, params, lr: float = 5e-4, mu: float = 0.02) -> None:
        if not lr > 0:
            raise ValueError(f"invalid learning rate eta: {lr} (must be > 0)")
        if not mu > 0:
            raise ValueError(f"invalid damping mu: {mu} (must be > 0)")
        super().__init__(params, dict(lr=lr, mu=mu))

    def _params(self):
        for group in self.param_groups:
            yield from group["params"]

    @torch.no_grad()
    def set_hessian(self, hessians: dict[torch.Tensor, torch.Tensor]) -> None:
        """Store h_kk for every parameter (a dict keyed by the parameter tensors, values of their shape)."""
        for p in self._params():
            if p not in hessians:
                raise KeyError("set_hessian needs a curvature estimate for every parameter of the optimizer")
            h = hessians[p].detach()
            if h.shape != p.shape:
                raise ValueError(f"curvature of shape {tuple(h.shape)} for a parameter of shape {tuple(p.shape)}")
            if not torch.isfinite(h).all() or (h < 0).any():
                raise ValueError("curvature estimates must be finite and >= 0 (Gauss-Newton)")
            self.state[p]["hessian"] = h.to(p.dtype).clone()

    @torch.no_grad()
    def estimate_hessian(self, model: nn.Module, inputs: torch.Tensor, output_curvature: float = 2.0) -> None:
        """Re-estimate h_kk on ``inputs`` (the paper uses 500 training patterns) by back-propagating
        second derivatives through ``model.trunk()`` (:func:`gauss_newton_diagonal`, Appendix C)."""
        prepare = getattr(model, "prepare", None)  # a fixed input step (LeNet-1's down-sampling), if any
        with torch.enable_grad():
            x = prepare(inputs) if prepare is not None else inputs
            hessians = gauss_newton_diagonal(model.trunk(), x, output_curvature)
        self.set_hessian(hessians)

    def step_sizes(self) -> list[torch.Tensor]:
        """The per-parameter step eta / (mu + h_kk) of every parameter, in order."""
        out = []
        for group in self.param_groups:
            for p in group["params"]:
                out.append(group["lr"] / (group["mu"] + self._hessian(p)))
        return out

    def _hessian(self, p: torch.Tensor) -> torch.Tensor:
        state = self.state[p]
        if "hessian" not in state:
            raise RuntimeError("SDLM has no curvature estimate: call estimate_hessian() or set_hessian() first")
        return state["hessian"]

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mu = group["lr"], group["mu"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.addcdiv_(p.grad, mu + self._hessian(p), value=-lr)
        return loss
