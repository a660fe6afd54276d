"""Oracle tests for the layers torch lacks: each against a plain reference, and gradcheck in float64."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lenet5.layers import (
    C3_TABLE,
    RBF_BITMAPS,
    PaperConv2d,
    PaperLinear,
    RBFOutput,
    SparseConv2d,
    Subsampling,
    init_bound,
    rbf_prototypes,
    squash,
    squash_derivative,
)


def test_squash_maps_plus_minus_one_to_itself():
    """Appendix A: A = 1.7159, S = 2/3 give f(1) = 1 and f(-1) = -1."""
    assert float(squash(torch.tensor(1.0))) == pytest.approx(1.0, abs=1e-4)
    assert float(squash(torch.tensor(-1.0))) == pytest.approx(-1.0, abs=1e-4)
    assert float(squash(torch.tensor(100.0))) == pytest.approx(1.7159)


def test_squash_derivative_matches_autograd():
    a = torch.linspace(-4, 4, 101, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(squash(a).sum(), a)
    assert torch.allclose(squash_derivative(a.detach()), g)


def test_subsampling_matches_avg_pool_times_four_times_coefficient_plus_bias():
    layer = Subsampling(6)
    x = torch.randn(3, 6, 28, 28)
    expected = F.avg_pool2d(x, 2) * 4 * layer.weight.view(1, -1, 1, 1) + layer.bias.view(1, -1, 1, 1)
    assert torch.allclose(layer(x), expected, atol=1e-6)
    assert layer(x).shape == (3, 6, 14, 14)


def test_subsampling_is_not_plain_average_pooling():
    layer = Subsampling(2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([2.0, -1.0]))
        layer.bias.copy_(torch.tensor([0.5, 0.0]))
    x = torch.ones(1, 2, 2, 2)
    assert layer(x).flatten().tolist() == [8.5, -4.0]


def _dense_masked_reference(layer: SparseConv2d, x: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    mask = layer.mask()[:, :, None, None]
    return F.conv2d(x, dense * mask, layer.bias)


def test_sparse_c3_matches_a_masked_dense_convolution_outputs_and_gradients():
    layer = SparseConv2d(6, 16, 5, C3_TABLE).double()
    # the oracle owns a dense (16, 6, 5, 5) weight; copy the connected kernels into it
    dense = torch.randn(16, 6, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(dense[layer.out_index, layer.in_index])
    dense.requires_grad_(True)
    x = torch.randn(2, 6, 14, 14, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    out = layer(x)
    ref = _dense_masked_reference(layer, x_ref, dense)
    assert out.shape == (2, 16, 10, 10)
    assert torch.allclose(out, ref)
    g = torch.randn_like(out)
    out.backward(g)
    ref.backward(g)
    assert torch.allclose(x.grad, x_ref.grad)
    assert torch.allclose(layer.weight.grad, dense.grad[layer.out_index, layer.in_index])
    # the oracle's unconnected kernels get gradient only through the mask's zeros: none at all
    unconnected = layer.mask() == 0
    assert dense.grad[unconnected].abs().max() == 0


def test_c3_connection_table_is_table_one():
    assert C3_TABLE[:6] == ((0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5))
    assert C3_TABLE[6:12] == ((0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5))
    assert C3_TABLE[12:15] == ((0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5))
    assert C3_TABLE[15] == (0, 1, 2, 3, 4, 5)
    layer = SparseConv2d(6, 16, 5, C3_TABLE)
    assert sum(p.numel() for p in layer.parameters()) == 6 * (75 + 1) + 9 * (100 + 1) + (150 + 1) == 1516
    assert "connections=60/96" in repr(layer)


def test_sparse_conv_rejects_a_bad_table():
    with pytest.raises(ValueError, match="outside"):
        SparseConv2d(2, 2, 3, ((0,), (2,)))
    with pytest.raises(ValueError, match="one non-empty row"):
        SparseConv2d(2, 2, 3, ((0,),))


def test_rbf_matches_an_explicit_loop():
    layer = RBFOutput()
    x = torch.randn(4, 84)
    out = layer(x)
    for n in range(4):
        for i in range(10):
            expected = sum((x[n, j] - layer.prototypes[i, j]) ** 2 for j in range(84))
            assert float(out[n, i]) == pytest.approx(float(expected), rel=1e-5)


def test_rbf_prototypes_are_plus_minus_one_bitmaps_of_the_ten_digits():
    p = rbf_prototypes()
    assert p.shape == (10, 84)
    assert set(p.unique().tolist()) == {-1.0, 1.0}
    assert RBF_BITMAPS.split()[:10] == [str(d) for d in range(10)]
    # all ten are distinct, and far apart: at least 10 of 84 pixels differ between any two
    hamming = (p[:, None, :] != p[None, :, :]).sum(-1)
    assert int(hamming[~torch.eye(10, dtype=torch.bool)].min()) >= 10


def test_rbf_parse_rejects_bad_art():
    with pytest.raises(ValueError):
        rbf_prototypes("0\n###\n")


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: Subsampling(3), (2, 3, 6, 6)),
        (lambda: SparseConv2d(3, 4, 3, ((0,), (0, 1), (1, 2), (0, 1, 2))), (2, 3, 7, 7)),
        (lambda: RBFOutput(), (2, 84)),
        (lambda: PaperConv2d(2, 3, 3), (2, 2, 5, 5)),
        (lambda: PaperLinear(5, 4), (3, 5)),
    ],
)
def test_gradcheck_in_float64(make, shape):
    layer = make().double()
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: layer(inp), (x,))
    params = [p for p in layer.parameters()]
    if params:
        functional = torch.func.functional_call
        names = [n for n, _ in layer.named_parameters()]

        def g(*ps):
            return functional(layer, dict(zip(names, ps, strict=True)), (x.detach(),))

        inputs = tuple(p.detach().clone().requires_grad_(True) for p in params)
        assert torch.autograd.gradcheck(g, inputs)


def test_gradcheck_squash():
    a = torch.randn(10, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(squash, (a,))


@pytest.mark.parametrize("rule, bound", [("fan-in", lambda f: 2.4 / f), ("sqrt-fan-in", lambda f: 2.4 / math.sqrt(f))])
def test_init_bounds(rule, bound):
    assert init_bound(25, rule) == pytest.approx(bound(25))
    conv = PaperConv2d(16, 120, 5, init=rule)
    b = bound(16 * 25)
    w, bias = conv.weight.detach(), conv.bias.detach()
    assert float(w.abs().max()) <= b and float(w.abs().max()) > 0.9 * b
    assert float(bias.abs().max()) <= b
    with pytest.raises(ValueError):
        init_bound(4, "xavier")
