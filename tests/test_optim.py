"""SDLM: the step against closed forms, the curvature estimate against brute force (Appendix C)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from lenet5.layers import PaperConv2d, PaperLinear, SparseConv2d, Subsampling, squash, squash_derivative
from lenet5.model import LeNet5
from lenet5.optim import SDLM, gauss_newton_diagonal


def test_sdlm_step_matches_the_closed_form_on_a_quadratic():
    """E = 1/2 sum_k c_k (w_k - w*_k)^2 has h_kk = c_k exactly; one step moves each w_k by
    eta c_k / (mu + c_k) of the way to w*_k."""
    torch.manual_seed(1)
    c = torch.rand(7, dtype=torch.float64) * 3
    target = torch.randn(7, dtype=torch.float64)
    w = torch.nn.Parameter(torch.randn(7, dtype=torch.float64))
    w0 = w.detach().clone()
    eta, mu = 0.3, 0.02
    opt = SDLM([w], lr=eta, mu=mu)
    opt.set_hessian({w: c})
    loss = 0.5 * (c * (w - target) ** 2).sum()
    loss.backward()
    opt.step()
    expected = w0 - eta * c / (mu + c) * (w0 - target)
    assert torch.allclose(w.detach(), expected)


def test_sdlm_equals_sgd_with_lr_eta_over_mu_plus_h_when_h_is_fixed():
    torch.manual_seed(2)
    model = PaperLinear(6, 3)
    twin = copy.deepcopy(model)
    eta, mu, h = 5e-4, 0.02, 0.7
    sdlm = SDLM(model.parameters(), lr=eta, mu=mu)
    sdlm.set_hessian({p: torch.full_like(p, h) for p in model.parameters()})
    sgd = torch.optim.SGD(twin.parameters(), lr=eta / (mu + h))
    for _ in range(5):
        x = torch.randn(4, 6)
        for m, opt in ((model, sdlm), (twin, sgd)):
            opt.zero_grad()
            (m(x) ** 2).sum().backward()
            opt.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-7)


def test_sdlm_validates_its_arguments_and_needs_curvature():
    p = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match="learning rate"):
        SDLM([p], lr=0)
    with pytest.raises(ValueError, match="mu"):
        SDLM([p], lr=1e-3, mu=-1)
    opt = SDLM([p])
    p.grad = torch.ones(3)
    with pytest.raises(RuntimeError, match="curvature"):
        opt.step()
    with pytest.raises(ValueError, match=">= 0"):
        opt.set_hessian({p: -torch.ones(3)})
    with pytest.raises(ValueError, match="shape"):
        opt.set_hessian({p: torch.ones(4)})


def test_sdlm_state_dict_round_trip():
    model = LeNet5()
    opt = SDLM(model.parameters(), lr=1e-4)
    opt.estimate_hessian(model, torch.randn(8, 1, 32, 32))
    twin = SDLM(model.parameters(), lr=9.0)
    twin.load_state_dict(opt.state_dict())
    assert twin.param_groups[0]["lr"] == 1e-4
    for a, b in zip(opt.step_sizes(), twin.step_sizes(), strict=True):
        assert torch.equal(a, b)


# ---- the curvature estimate against a brute-force loop over every connection ----------------------
def _f(a):
    return squash(torch.as_tensor(a)).numpy()


def _fp2(a):
    return squash_derivative(torch.as_tensor(a)).numpy() ** 2


def _brute_force_h(layers, x, c_out=2.0):
    """Appendix C's recurrences written out connection by connection, for one pattern x (6, 6)."""
    conv, sub, sparse, lin = layers
    w1, b1 = conv.weight.detach().double().numpy(), conv.bias.detach().double().numpy()
    w2, b2 = sub.weight.detach().double().numpy(), sub.bias.detach().double().numpy()
    w3, b3 = sparse.weight.detach().double().numpy(), sparse.bias.detach().double().numpy()
    w4, b4 = lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()
    outs, ins = sparse.out_index.tolist(), sparse.in_index.tolist()
    # forward
    a1 = np.zeros((2, 4, 4))
    for c in range(2):
        for i in range(4):
            for j in range(4):
                a1[c, i, j] = b1[c] + sum(w1[c, 0, u, v] * x[i + u, j + v] for u in range(3) for v in range(3))
    o1 = _f(a1)
    a2 = np.zeros((2, 2, 2))
    for c in range(2):
        for i in range(2):
            for j in range(2):
                a2[c, i, j] = w2[c] * sum(o1[c, 2 * i + u, 2 * j + v] for u in range(2) for v in range(2)) + b2[c]
    o2 = _f(a2)
    a3 = b3.copy()
    for k, (o, c) in enumerate(zip(outs, ins, strict=True)):
        a3[o] += sum(w3[k, u, v] * o2[c, u, v] for u in range(2) for v in range(2))
    o3 = _f(a3)
    a4 = w4 @ o3 + b4
    # second derivatives, backwards
    h_a4 = _fp2(a4) * c_out
    h_w4 = np.outer(h_a4, o3**2)
    h_b4 = h_a4
    h_o3 = np.array([sum(w4[i, j] ** 2 * h_a4[i] for i in range(2)) for j in range(3)])
    h_a3 = _fp2(a3) * h_o3
    h_w3 = np.zeros_like(w3)
    h_o2 = np.zeros((2, 2, 2))
    for k, (o, c) in enumerate(zip(outs, ins, strict=True)):
        for u in range(2):
            for v in range(2):
                h_w3[k, u, v] = o2[c, u, v] ** 2 * h_a3[o]
                h_o2[c, u, v] += w3[k, u, v] ** 2 * h_a3[o]
    h_b3 = h_a3
    h_a2 = _fp2(a2) * h_o2
    h_w2, h_b2, h_o1 = np.zeros(2), np.zeros(2), np.zeros((2, 4, 4))
    for c in range(2):
        for i in range(2):
            for j in range(2):
                h_b2[c] += h_a2[c, i, j]
                for u in range(2):
                    for v in range(2):
                        h_w2[c] += o1[c, 2 * i + u, 2 * j + v] ** 2 * h_a2[c, i, j]
                        h_o1[c, 2 * i + u, 2 * j + v] = w2[c] ** 2 * h_a2[c, i, j]
    h_a1 = _fp2(a1) * h_o1
    h_w1, h_b1 = np.zeros_like(w1), np.zeros(2)
    for c in range(2):
        h_b1[c] = h_a1[c].sum()
        for u in range(3):
            for v in range(3):
                h_w1[c, 0, u, v] = sum(x[i + u, j + v] ** 2 * h_a1[c, i, j] for i in range(4) for j in range(4))
    return [h_w1, h_b1, h_w2, h_b2, h_w3, h_b3, h_w4, h_b4]


def test_curvature_estimate_matches_brute_force_on_a_tiny_network():
    torch.manual_seed(3)
    layers = [
        PaperConv2d(1, 2, 3),  # (1, 6, 6) -> (2, 4, 4)
        Subsampling(2),  # -> (2, 2, 2)
        SparseConv2d(2, 3, 2, ((0,), (0, 1), (1,))),  # -> (3, 1, 1), a sparse table as in C3
        PaperLinear(3, 2),  # -> (2,)
    ]
    layers = [layer.double() for layer in layers]
    trunk = [(f"l{i}", layer) for i, layer in enumerate(layers)]
    x = torch.randn(3, 1, 6, 6, dtype=torch.float64)
    h = gauss_newton_diagonal(trunk, x, output_curvature=2.0)
    brute = [np.mean(v, axis=0) for v in zip(*[_brute_force_h(layers, x[n, 0].numpy()) for n in range(3)], strict=True)]
    params = [p for layer in layers for p in (layer.weight, layer.bias)]
    for p, expected in zip(params, brute, strict=True):
        np.testing.assert_allclose(h[p].numpy(), expected, rtol=1e-10, atol=1e-14)


def test_curvature_equals_the_exact_gauss_newton_diagonal_for_one_layer():
    """With one layer and no shared weights the paper's approximation drops nothing: it is J^T (2I) J's diagonal."""
    torch.manual_seed(4)
    layer = PaperLinear(5, 3).double()
    x = torch.randn(1, 5, dtype=torch.float64)
    h = gauss_newton_diagonal([("f", layer)], x, output_curvature=2.0)

    def out(w, b):
        return squash(torch.nn.functional.linear(x, w, b)).flatten()

    jw, jb = torch.autograd.functional.jacobian(out, (layer.weight.detach(), layer.bias.detach()))
    assert torch.allclose(h[layer.weight], 2 * (jw**2).sum(0))
    assert torch.allclose(h[layer.bias], 2 * (jb**2).sum(0))


def test_estimate_hessian_on_lenet5_is_positive_and_has_every_parameter():
    model = LeNet5()
    opt = SDLM(model.parameters())
    opt.estimate_hessian(model, torch.randn(16, 1, 32, 32))
    for p in model.parameters():
        h = opt.state[p]["hessian"]
        assert h.shape == p.shape and (h >= 0).all() and h.sum() > 0
