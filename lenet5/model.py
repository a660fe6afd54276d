"""LeNet-5 as Sec. II-B and Fig. 2 of LeCun et al. (1998) describe it, read top to bottom.

    input 32x32 -> C1 6@28x28 -> S2 6@14x14 -> C3 16@10x10 (Table I) -> S4 16@5x5 -> C5 120 -> F6 84
    -> Euclidean RBF output, 10 penalties (lower is better)

Every unit up to F6 computes a weighted sum plus a bias and passes it through f(a) = 1.7159 tanh(2a/3).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .layers import (
    C3_FULL_TABLE,
    C3_TABLE,
    PaperConv2d,
    PaperLinear,
    RBFOutput,
    SparseConv2d,
    Subsampling,
    squash,
)

# Trainable parameters per layer as the paper counts them (Sec. II-B); checked when the model is built.
PAPER_PARAMS = {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164}


class LeNet5(nn.Module):
    """The paper's LeNet-5. ``forward`` returns the ten RBF penalties; ``predict`` their argmin."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        table = C3_TABLE if self.config.c3_table == "paper" else C3_FULL_TABLE
        init = self.config.init
        self.c1 = PaperConv2d(1, 6, 5, init=init)  # (N,1,32,32) -> (N,6,28,28)
        self.s2 = Subsampling(6, init=init)  # -> (N,6,14,14)
        self.c3 = SparseConv2d(6, 16, 5, table, init=init)  # -> (N,16,10,10)
        self.s4 = Subsampling(16, init=init)  # -> (N,16,5,5)
        self.c5 = PaperConv2d(16, 120, 5, init=init)  # -> (N,120,1,1)
        self.f6 = PaperLinear(120, 84, init=init)  # (N,120) -> (N,84)
        self.output = RBFOutput()  # (N,84) -> (N,10) penalties
        if self.config.c3_table == "paper":
            counts = self.param_counts()
            assert counts == PAPER_PARAMS, f"parameter counts {counts} differ from the paper's {PAPER_PARAMS}"
            assert sum(counts.values()) == 60_000

    def trunk(self) -> list[tuple[str, nn.Module]]:
        """The squashed layers C1..F6, in order."""
        return [("c1", self.c1), ("s2", self.s2), ("c3", self.c3), ("s4", self.s4), ("c5", self.c5), ("f6", self.f6)]

    def param_counts(self) -> dict[str, int]:
        return {name: sum(p.numel() for p in layer.parameters()) for name, layer in self.trunk()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 32, 32) inputs scaled as in Sec. II-A -> (N, 10) penalties."""
        for name, layer in self.trunk():
            if name == "f6":
                x = x.flatten(1)  # (N,120,1,1) -> (N,120)
            x = squash(layer(x))
        return self.output(x)

    def activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The squashed output of every layer and the penalties, for figures and the web demo."""
        out = {"input": x}
        for name, layer in self.trunk():
            if name == "f6":
                x = x.flatten(1)
            x = squash(layer(x))
            out[name] = x
        out["penalties"] = self.output(x)
        return out

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The class whose prototype is nearest: argmin of the penalties. (N,)"""
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
