"""LeNet-5 as Sec. II-B and Fig. 2 of LeCun et al. (1998) describe it, read top to bottom.

    input 32x32 -> C1 6@28x28 -> S2 6@14x14 -> C3 16@10x10 (Table I) -> S4 16@5x5 -> C5 120 -> F6 84
    -> Euclidean RBF output, 10 penalties (lower is better)

Every unit up to F6 computes a weighted sum plus a bias and passes it through f(a) = 1.7159 tanh(2a/3).

The same class builds the paper's other networks (Sec. III-C, Fig. 9) from the same layers, chosen by
``ModelConfig.arch``: LeNet-1, LeNet-4, and the linear classifier and 28x28-300-10 network baselines.
Their outputs are 10 squashed units read against place-coded targets (+1 for the class, -1 elsewhere),
so they too return penalties: the squared distance to each class's target, lower is better.
The modern variants (softmax outputs, ReLU, batch norm) live in modern.py; :func:`build_model` makes any.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .distort import view_maps, warp
from .layers import (
    C3_FULL_TABLE,
    C3_TABLE,
    LENET1_C3_TABLE,
    LENET4_C3_TABLE,
    Downsample16,
    FieldCrop,
    PaperConv2d,
    PaperLinear,
    RBFOutput,
    SparseConv2d,
    Subsampling,
    squash,
)

# Trainable parameters per layer as the paper counts them (Sec. II-B); checked when the model is built.
PAPER_PARAMS = {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164}

PAPER_ARCHS = ("lenet5", "lenet4", "lenet1", "linear", "mlp300")


def place_codes(classes: int = 10) -> torch.Tensor:
    """Targets of the squashed output units of LeNet-1/LeNet-4 and the baselines: +1 for the class, -1 else."""
    return 2.0 * torch.eye(classes) - 1.0  # (10, 10)


def _layers(config: ModelConfig) -> tuple[nn.Module | None, list[tuple[str, nn.Module]], nn.Module]:
    """(fixed input step or None, the squashed trainable layers in order, the output) for ``config.arch``."""
    init, coef = config.init, config.subsample_init
    if config.arch == "lenet5":
        table = C3_TABLE if config.c3_table == "paper" else C3_FULL_TABLE
        return (
            None,
            [
                ("c1", PaperConv2d(1, 6, 5, init=init)),  # (N,1,32,32) -> (N,6,28,28)
                ("s2", Subsampling(6, init=init, coef_init=coef)),  # -> (N,6,14,14)
                ("c3", SparseConv2d(6, 16, 5, table, init=init)),  # -> (N,16,10,10)
                ("s4", Subsampling(16, init=init, coef_init=coef)),  # -> (N,16,5,5)
                ("c5", PaperConv2d(16, 120, 5, init=init)),  # -> (N,120,1,1)
                ("f6", PaperLinear(120, 84, init=init)),  # (N,120) -> (N,84)
            ],
            RBFOutput(),
        )  # (N,84) -> (N,10) penalties
    if config.arch == "lenet4":  # Sec. III-C; the C3 table is ours: DEVIATION(D12)
        return (
            None,
            [
                ("c1", PaperConv2d(1, 4, 5, init=init)),  # (N,1,32,32) -> (N,4,28,28)
                ("s2", Subsampling(8, repeat=2, init=init, coef_init=coef)),  # two maps per C1 map -> (N,8,14,14)
                ("c3", SparseConv2d(8, 16, 5, LENET4_C3_TABLE, init=init)),  # -> (N,16,10,10)
                ("s4", Subsampling(16, init=init, coef_init=coef)),  # -> (N,16,5,5)
                ("c5", PaperConv2d(16, 120, 5, init=init)),  # 120 units fully connected -> (N,120,1,1)
                ("f6", PaperLinear(120, 10, init=init)),  # -> (N,10)
            ],
            RBFOutput(place_codes()),
        )
    if config.arch == "lenet1":  # Sec. III-C: the digit down-sampled to 16x16 in a 28x28 input; DEVIATION(D11)
        return (
            Downsample16(),
            [
                ("c1", PaperConv2d(1, 4, 5, init=init)),  # (N,1,28,28) -> (N,4,24,24)
                ("s2", Subsampling(4, init=init, coef_init=coef)),  # -> (N,4,12,12)
                ("c3", SparseConv2d(4, 12, 5, LENET1_C3_TABLE, init=init)),  # -> (N,12,8,8)
                ("s4", Subsampling(12, init=init, coef_init=coef)),  # -> (N,12,4,4)
                ("f6", PaperLinear(12 * 4 * 4, 10, init=init)),  # (N,192) -> (N,10)
            ],
            RBFOutput(place_codes()),
        )
    if config.arch == "linear":  # Fig. 9's linear classifier on the 28x28 pixels
        return FieldCrop(), [("f6", PaperLinear(28 * 28, 10, init=init))], RBFOutput(place_codes())
    if config.arch == "mlp300":  # Fig. 9's 28x28-300-10 network
        return (
            FieldCrop(),
            [
                ("h1", PaperLinear(28 * 28, 300, init=init)),  # (N,784) -> (N,300)
                ("f6", PaperLinear(300, 10, init=init)),  # -> (N,10)
            ],
            RBFOutput(place_codes()),
        )
    raise ValueError(f"arch {config.arch!r} is not one of the paper's networks {PAPER_ARCHS}")


class LeNet5(nn.Module):
    """The paper's LeNet-5 (or, by ``config.arch``, LeNet-4, LeNet-1, the linear or the 300-unit baseline).

    ``forward`` returns the ten penalties; ``predict`` their argmin.

    With ``fast_inference`` on (``load_model`` turns it on where numba is installed, :meth:`use_engine`
    sets it), ``forward`` hands inference to the compiled engine (engine.py) when it applies: LeNet-5 in
    eval mode, float32 on the CPU, no gradient wanted, no tracing or hooks. Its penalties equal this
    module's to about 1e-6 relative (tests/test_engine.py); everywhere else this code runs.
    """

    fast_inference = False

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        prepare, layers, output = _layers(self.config)
        self.prepare = prepare or nn.Identity()  # fixed, parameter-free input step (LeNet-1, baselines)
        self.names = [name for name, _ in layers]
        for name, layer in layers:
            self.add_module(name, layer)
        self.output = output
        if self.config.arch == "lenet5" and self.config.c3_table == "paper":
            counts = self.param_counts()
            assert counts == PAPER_PARAMS, f"parameter counts {counts} differ from the paper's {PAPER_PARAMS}"
            assert sum(counts.values()) == 60_000

    def trunk(self) -> list[tuple[str, nn.Module]]:
        """The squashed trainable layers in order (C1..F6 for LeNet-5)."""
        return [(name, getattr(self, name)) for name in self.names]

    def param_counts(self) -> dict[str, int]:
        return {name: sum(p.numel() for p in layer.parameters()) for name, layer in self.trunk()}

    def use_engine(self, on: bool = True) -> LeNet5:
        """Let inference run in the compiled engine where it applies (see the class docstring). Returns self."""
        self.fast_inference = bool(on)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 32, 32) inputs scaled as in Sec. II-A -> (N, 10) penalties."""
        if self.fast_inference and not self.training:
            from .engine import fast_forward

            out = fast_forward(self, x)
            if out is not None:
                return out
        x = self.prepare(x)
        for _, layer in self.trunk():
            if isinstance(layer, nn.Linear):
                x = x.flatten(1)  # e.g. (N,120,1,1) -> (N,120)
            x = squash(layer(x))
        return self.output(x)

    def activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The squashed output of every layer and the penalties, for figures and the web demo."""
        out = {"input": x}
        x = self.prepare(x)
        for name, layer in self.trunk():
            if isinstance(layer, nn.Linear):
                x = x.flatten(1)
            x = squash(layer(x))
            out[name] = x
        out["penalties"] = self.output(x)
        return out

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The class whose prototype is nearest: argmin of the penalties. (N,)"""
        return self(x).argmin(1)


def build_model(config: ModelConfig | None = None) -> nn.Module:
    """The network ``config.arch`` names: a paper network (:class:`LeNet5`) or a modern one (modern.py)."""
    config = config or ModelConfig()
    if config.arch in PAPER_ARCHS:
        return LeNet5(config)
    from .modern import ModernNet

    return ModernNet(config)


class Ensemble(nn.Module):
    """Several trained networks read as one: the sum of their penalties (lower is better).

    For networks with place-coded outputs this is the paper's boosting rule, "outputs added" (Sec. III-C):
    with +-1 targets the squared distance to class i is a constant minus 4 y_i, so summed penalties rank
    the classes as summed outputs do. For softmax networks (penalties -log p) it multiplies the
    probabilities (a geometric mean).
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).sum(0)  # (N, 10)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).argmin(1)


class TestTimeAugment(nn.Module):
    """A network read on several views of each input (`lenet5 evaluate --tta`): the sum of its penalties
    over the views, which for softmax networks multiplies the probabilities, as :class:`Ensemble` does.

    Args:
        model: any network of this package ((N, 1, S, S) -> (N, classes) penalties).
        views: a name of ``config.TTA_VIEWS``, a list of (dx, dy, degrees, scale), or (V, 2, 3) forward maps
            (``distort.view_maps``).
    """

    __test__ = False  # a model, not a pytest test class

    def __init__(self, model: nn.Module, views: str | list | torch.Tensor = "shift") -> None:
        super().__init__()
        self.model = model
        maps = views.to(torch.float64).clone() if isinstance(views, torch.Tensor) else view_maps(views)
        self.register_buffer("maps", maps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        return sum(self.model(warp(x, m.expand(n, 2, 3))) for m in self.maps)  # (N, classes)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).argmin(1)


def layer_table(model: LeNet5 | None = None) -> list[dict]:
    """Per-layer rows of the paper's accounting: maps x size, kernel, parameters, connections, MACs.

    Connections follow the paper: (inputs per unit + 1 bias) x units, and units x 84 for the RBF.
    Multiply-accumulates count one per weight use; subsampling counts one per summed input
    (an add) plus one multiply per unit, and the RBF counts one per (x_j - w_ij)^2 term.
    """
    model = model or LeNet5()
    rows = []
    x = torch.zeros(1, 1, 32, 32)
    acts = model.activations(x)
    c3_in_per_map = [len(r) for r in model.c3.table]
    for name, layer in model.trunk():
        shape = tuple(acts[name].shape[1:])
        maps = shape[0]
        size = f"{shape[1]}x{shape[2]}" if len(shape) == 3 else "1x1"
        units = int(torch.tensor(shape).prod())
        params = sum(p.numel() for p in layer.parameters())
        if isinstance(layer, Subsampling):
            kernel, per_unit = "2x2/2", 4
            connections = (per_unit + 1) * units
            macs = (per_unit + 1) * units  # 4 adds + 1 multiply per unit
        elif isinstance(layer, SparseConv2d):
            kernel = "5x5"
            hw = shape[1] * shape[2]
            connections = sum((25 * n + 1) * hw for n in c3_in_per_map)
            macs = sum(25 * n * hw for n in c3_in_per_map)
        elif isinstance(layer, PaperConv2d):
            kernel = "5x5"
            per_unit = layer.in_channels * 25
            connections = (per_unit + 1) * units
            macs = per_unit * units
        else:  # F6
            kernel, per_unit = "full", layer.in_features
            connections = (per_unit + 1) * units
            macs = per_unit * units
        rows.append(
            dict(
                layer=name.upper(),
                maps=maps,
                size=size,
                kernel=kernel,
                params=params,
                connections=connections,
                macs=macs,
            )
        )
    n_cls, d = model.output.prototypes.shape
    rows.append(
        dict(layer="OUTPUT", maps=n_cls, size="1x1", kernel="RBF", params=0, connections=n_cls * d, macs=n_cls * d)
    )
    return rows
