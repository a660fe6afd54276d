"""The assembled LeNet-5 against the paper's numbers (Sec. II-B) and generic module hygiene."""

from __future__ import annotations

import io
import math

import pytest
import torch

from lenet5.config import ModelConfig
from lenet5.layers import init_bound
from lenet5.model import PAPER_PARAMS, LeNet5, build_model, layer_table
from lenet5.summary import format_summary, summary


def test_per_layer_parameter_counts_equal_the_papers():
    model = LeNet5()
    assert model.param_counts() == {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164}
    assert model.param_counts() == PAPER_PARAMS
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 60_000


def test_state_dict_keys_read_like_figure_two():
    keys = set(LeNet5().state_dict())
    for layer in ("c1", "s2", "c3", "s4", "c5", "f6"):
        assert {f"{layer}.weight", f"{layer}.bias"} <= keys
    assert "output.prototypes" in keys


def test_rbf_prototypes_get_no_gradient():
    model = LeNet5()
    assert not any(b.requires_grad for b in model.buffers())
    assert all(name != "output.prototypes" for name, _ in model.named_parameters())
    model(torch.randn(2, 1, 32, 32)).sum().backward()
    assert model.output.prototypes.grad is None


def test_forward_shapes_and_no_nan():
    model = LeNet5()
    x = torch.randn(5, 1, 32, 32)
    acts = model.activations(x)
    shapes = {k: tuple(v.shape) for k, v in acts.items()}
    assert shapes == {
        "input": (5, 1, 32, 32),
        "c1": (5, 6, 28, 28),
        "s2": (5, 6, 14, 14),
        "c3": (5, 16, 10, 10),
        "s4": (5, 16, 5, 5),
        "c5": (5, 120, 1, 1),
        "f6": (5, 84),
        "penalties": (5, 10),
    }
    assert torch.isfinite(model(x)).all()
    assert (model(x) >= 0).all()  # squared distances
    assert torch.equal(model(x), acts["penalties"])
    assert torch.equal(model.predict(x), model(x).argmin(1))


def test_every_trainable_parameter_gets_a_gradient():
    model = LeNet5()
    model(torch.randn(4, 1, 32, 32)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("rule", ["fan-in", "sqrt-fan-in"])
@torch.no_grad()  # reading weights, not training them
def test_initialisation_bounds_per_layer(rule):
    """Appendix A: uniform in +-2.4/F_i (or our sqrt rule), F_i = fan-in of the unit, C3 per map."""
    model = LeNet5(ModelConfig(init=rule))
    fan = {"c1": 25, "s2": 4, "c5": 400, "f6": 120, "s4": 4}
    for name, f in fan.items():
        layer = getattr(model, name)
        b = init_bound(f, rule)
        for p in (layer.weight, layer.bias):
            assert float(p.abs().max()) <= b + 1e-7, name
        if layer.weight.numel() > 100:  # enough samples to reach close to the bound
            assert float(layer.weight.abs().max()) > 0.9 * b, name
    for k, o in enumerate(model.c3.out_index.tolist()):  # C3: fan-in depends on the map (75, 100 or 150)
        f = 25 * len(model.c3.table[o])
        assert float(model.c3.weight[k].abs().max()) <= init_bound(f, rule) + 1e-7
    assert float(model.c3.weight[:18].abs().max()) > float(model.c3.weight[54:].abs().max())  # 75 vs 150 inputs


@torch.no_grad()  # reading weights, not training them
def test_printed_rule_gives_weights_of_two_point_four_over_fan_in():
    model = LeNet5(ModelConfig(init="fan-in"))
    assert float(model.c5.weight.abs().max()) == pytest.approx(2.4 / 400, rel=0.01)
    assert float(model.f6.weight.abs().max()) == pytest.approx(2.4 / 120, rel=0.02)
    assert LeNet5().config.init == "fan-in"  # the printed rule is the default
    model = LeNet5(ModelConfig(init="sqrt-fan-in"))
    assert float(model.c5.weight.abs().max()) == pytest.approx(2.4 / math.sqrt(400), rel=0.01)


@pytest.mark.parametrize("arch", ["lenet5", "lenet4", "lenet1"])
def test_nonzero_subsampling_init_folds_the_same_draw_away_from_zero(arch):
    """D15: coefficients in +-[b/2, b], both signs, from the same draw; every other weight is unchanged."""
    torch.manual_seed(3)
    plain = build_model(ModelConfig(arch=arch)).state_dict()
    torch.manual_seed(3)
    folded = build_model(ModelConfig(arch=arch, subsample_init="nonzero")).state_dict()
    b = init_bound(4)
    for name in plain:
        if name in ("s2.weight", "s4.weight"):
            u, w = plain[name], folded[name]
            assert float(w.abs().min()) >= b / 2 and float(w.abs().max()) <= b, name
            assert torch.equal(torch.sign(w), torch.sign(u)), name  # the sign of the draw is kept
            assert torch.allclose(w.abs(), (b + u.abs()) / 2), name
        else:
            assert torch.equal(plain[name], folded[name]), name
    small = [float(plain[n].abs().min()) for n in ("s2.weight", "s4.weight")]
    assert min(small) < b / 2  # the uniform draw does start some coefficients near 0 for this seed
    with pytest.raises(ValueError, match="subsample_init"):
        ModelConfig(subsample_init="zero")


def test_state_dict_round_trip_through_bytes():
    a, b = LeNet5(), LeNet5()
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b.load_state_dict(torch.load(buf, weights_only=True))
    x = torch.randn(3, 1, 32, 32)
    assert torch.equal(a(x), b(x))


def test_full_c3_table_variant():
    model = LeNet5(ModelConfig(c3_table="full"))
    assert model.param_counts()["c3"] == 16 * (150 + 1)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="c3_table"):
        ModelConfig(c3_table="half")
    with pytest.raises(ValueError, match="init"):
        ModelConfig(init="xavier")


def test_summary_reconciles_with_the_paper():
    info = summary()
    rows = {r["layer"]: r for r in info["layers"]}
    assert [rows[k]["connections"] for k in ("C1", "S2", "C3", "S4", "C5", "F6", "OUTPUT")] == [
        122_304, 5_880, 151_600, 2_000, 48_120, 10_164, 840
    ]  # fmt: skip
    assert info["totals"]["params"] == 60_000
    assert info["totals"]["connections"] == 340_908 == info["paper"]["connections"]
    assert sum(rows[k]["connections"] for k in ("C1", "S2", "C3", "S4", "C5", "F6")) == 340_068
    # multiply-accumulates: one per weight use; see PAPER_NOTES.md for the gap to Fig. 11's ~401,000
    assert info["totals"]["macs"] == 334_400
    text = format_summary(info)
    assert "60,000" in text and "340,908" in text and "401,000" in text
    assert layer_table()[2]["macs"] == 150_000  # C3: 60 kernels of 25 weights at 100 positions


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_model_runs_on_cuda():
    model = LeNet5().cuda()
    x = torch.randn(4, 1, 32, 32, device="cuda")
    out = model(x)
    out.sum().backward()
    assert out.device.type == "cuda" and torch.allclose(out.cpu(), model.cpu()(x.cpu()), atol=1e-4)
