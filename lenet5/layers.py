"""The pieces of LeNet-5 that torch lacks (LeCun et al. 1998, Sec. II-B and Appendix A).

Every layer exposes ``linear(x, weight, bias)``: its pre-activation as a function of the input and of
*given* parameters. ``forward`` calls it with the layer's own parameters; the SDLM curvature pass
(model.py) calls it with squared weights and squared inputs, which is how the paper back-propagates
second derivatives (Appendix C) with the same code that computes the forward pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import INIT_SCALE, PIXEL_BACKGROUND, SQUASH_A, SQUASH_S, SUBSAMPLE_INITS


def squash(a: torch.Tensor) -> torch.Tensor:
    """The paper's sigmoid f(a) = A tanh(S a), A = 1.7159, S = 2/3 (Appendix A); f(+-1) = +-1."""
    return SQUASH_A * torch.tanh(SQUASH_S * a)


def squash_derivative(a: torch.Tensor) -> torch.Tensor:
    """f'(a) = A S (1 - tanh^2(S a))."""
    return SQUASH_A * SQUASH_S * (1.0 - torch.tanh(SQUASH_S * a) ** 2)


INIT_RULES = ("fan-in", "sqrt-fan-in")


def init_bound(fan_in: int, rule: str = "fan-in") -> float:
    """Half-width of the uniform initial weights of a unit with ``fan_in`` inputs.

    'fan-in' is Appendix A as printed: 2.4 / F_i (the default). 'sqrt-fan-in' is 2.4 / sqrt(F_i), which
    gives every unit's weighted sum the same initial spread, the aim Appendix A states. DEVIATION(D1): an
    option only; PAPER_NOTES.md says how the two train.
    """
    if rule == "fan-in":
        return INIT_SCALE / fan_in
    if rule == "sqrt-fan-in":
        return INIT_SCALE / math.sqrt(fan_in)
    raise ValueError(f"unknown init rule {rule!r}; expected one of {INIT_RULES}")


def paper_uniform_(tensor: torch.Tensor, fan_in: int, rule: str = "fan-in") -> torch.Tensor:
    """Fill ``tensor`` uniformly in [-b, b], b = :func:`init_bound` (Appendix A)."""
    bound = init_bound(fan_in, rule)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)


class PaperConv2d(nn.Conv2d):
    """A convolution layer (C1, C5) whose weights and bias start uniform in +-2.4/F_i (or its sqrt rule)."""

    def __init__(self, *args, init: str = "fan-in", **kwargs) -> None:
        object.__setattr__(self, "init", init)  # needed by reset_parameters(), which Conv2d.__init__ calls
        super().__init__(*args, **kwargs)

    def fan_in(self) -> int:
        return self.in_channels // self.groups * math.prod(self.kernel_size)

    def reset_parameters(self) -> None:
        paper_uniform_(self.weight, self.fan_in(), self.init)
        if self.bias is not None:
            paper_uniform_(self.bias, self.fan_in(), self.init)

    def linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return self._conv_forward(x, weight, bias)


class PaperLinear(nn.Linear):
    """A fully connected layer (F6) with the paper's initialisation."""

    def __init__(self, *args, init: str = "fan-in", **kwargs) -> None:
        object.__setattr__(self, "init", init)
        super().__init__(*args, **kwargs)

    def fan_in(self) -> int:
        return self.in_features

    def reset_parameters(self) -> None:
        paper_uniform_(self.weight, self.in_features, self.init)
        if self.bias is not None:
            paper_uniform_(self.bias, self.in_features, self.init)

    def linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, weight, bias)


class Subsampling(nn.Module):
    """Trainable subsampling (S2, S4; Sec. II-B): per map, the sum of each non-overlapping 2x2 block is
    multiplied by one trainable coefficient and a trainable bias is added. The squashing function
    follows in the model. Not average pooling: the coefficient and bias are learned per map.

    Shapes: (N, C, H, W) -> (N, C, H/2, W/2). Parameters: weight (C,), bias (C,).
    With ``repeat`` r > 1 each input map feeds r subsampling maps of their own coefficients (LeNet-4's
    "8 subsampling maps connected in pairs to each first-layer map"): (N, C/r, H, W) -> (N, C, H/2, W/2).
    """

    def __init__(
        self, channels: int, size: int = 2, init: str = "fan-in", repeat: int = 1, coef_init: str = "uniform"
    ) -> None:
        super().__init__()
        if repeat < 1 or channels % repeat:
            raise ValueError(f"channels ({channels}) must be a multiple of repeat ({repeat})")
        if coef_init not in SUBSAMPLE_INITS:
            raise ValueError(f"unknown coef_init {coef_init!r}; expected one of {SUBSAMPLE_INITS}")
        self.channels, self.size, self.init, self.repeat, self.coef_init = channels, size, init, repeat, coef_init
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))
        self.reset_parameters()

    def fan_in(self) -> int:
        return self.size * self.size  # each unit sums 4 inputs through one shared coefficient

    def reset_parameters(self) -> None:
        paper_uniform_(self.weight, self.fan_in(), self.init)
        paper_uniform_(self.bias, self.fan_in(), self.init)
        if self.coef_init == "nonzero":
            # DEVIATION(D15), an option: a coefficient near 0 switches its map off, and the map's weights and
            # the coefficient then get almost no gradient from each other. The same draw u ~ U(-b, b) is
            # folded away from 0, sign(u) (b + |u|) / 2 in +-[b/2, b], so every other weight is unchanged.
            with torch.no_grad():
                bound = init_bound(self.fan_in(), self.init)
                sign = torch.where(self.weight >= 0, 1.0, -1.0)
                self.weight.copy_(sign * (bound + self.weight.abs()) / 2)

    def linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.repeat > 1:
            x = x.repeat_interleave(self.repeat, dim=1)  # (N, C/r, H, W) -> (N, C, H, W)
        pooled = F.avg_pool2d(x, self.size) * (self.size * self.size)  # (N, C, H/2, W/2): sum of each block
        out = pooled * weight.view(1, -1, 1, 1)
        return out if bias is None else out + bias.view(1, -1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        repeat = f", repeat={self.repeat}" if self.repeat > 1 else ""
        coef = f", coef_init={self.coef_init}" if self.coef_init != "uniform" else ""
        return f"{self.channels}, size={self.size}, init={self.init}{repeat}{coef}"


# Table I of the paper: the S2 maps (columns 0-5) that feed each C3 map (rows 0-15).
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),  # 3 contiguous maps
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),  # 4 contiguous
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),  # 4 discontinuous
    (0, 1, 2, 3, 4, 5),  # all six
)  # fmt: skip
C3_FULL_TABLE = tuple(tuple(range(6)) for _ in range(16))

# LeNet-1's third layer: 12 maps over the 4 maps of S2. The paper gives no table: DEVIATION(D11). Ours
# connects 4 maps to one S2 map, 4 to two neighbours and 4 to three (24 kernels), which gives 2,678
# parameters and about 100,000 multiply-accumulates (the paper: about 2,600 and about 100,000).
LENET1_C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0,), (1,), (2,), (3,),
    (0, 1), (1, 2), (2, 3), (0, 3),
    (0, 1, 2), (1, 2, 3), (0, 2, 3), (0, 1, 3),
)  # fmt: skip
# LeNet-4's third layer: 16 maps over the 8 maps of S2, each connected to 3 of them (48 kernels).
# DEVIATION(D12): no table is given; 3 inputs per map is what makes about 260,000 connections.
LENET4_C3_TABLE: tuple[tuple[int, ...], ...] = tuple(
    tuple(sorted({i % 8, (i + 1) % 8, (i + 2) % 8})) for i in range(8)
) + tuple(tuple(sorted({i % 8, (i + 3) % 8, (i + 5) % 8})) for i in range(8))


class FieldCrop(nn.Module):
    """The 28x28 MNIST image inside the 32x32 field: the input of the Fig. 9 baselines. No parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., 2:30, 2:30]  # (N,1,32,32) -> (N,1,28,28)


class Downsample16(nn.Module):
    """LeNet-1's input (Sec. III-C): the digit down-sampled to 16x16 and centred in a 28x28 field.

    MNIST's digits fill a 20x20 box, so the 30x30 centre of our 32x32 field is shrunk by 0.8 (antialiased
    bilinear) to 24x24 and padded with background to 28x28. DEVIATION(D11): the paper does not say how.
    Fixed, no parameters; (N,1,32,32) -> (N,1,28,28).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ink = x[..., 1:31, 1:31] - PIXEL_BACKGROUND  # background 0, so zero padding is background
        small = F.interpolate(ink, size=(24, 24), mode="bilinear", antialias=True, align_corners=False)
        return F.pad(small, (2, 2, 2, 2)) + PIXEL_BACKGROUND


class SparseConv2d(nn.Module):
    """A convolution in which each output map sees only some input maps (C3 with Table I).

    Only the kernels of connected (output, input) pairs exist as parameters: ``weight`` holds one
    k x k kernel per connection, (n_connections, k, k), so C3 has 60 x 25 + 16 = 1,516 trainable
    parameters and nothing else that trains. The forward pass scatters them into a dense
    (out, in, k, k) kernel whose other entries are zero, and convolves.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, table, init: str = "fan-in") -> None:
        super().__init__()
        self.init = init
        if len(table) != out_channels or any(not row for row in table):
            raise ValueError("the connection table needs one non-empty row of input maps per output map")
        if any(not 0 <= i < in_channels for row in table for i in row):
            raise ValueError(f"the connection table names an input map outside 0-{in_channels - 1}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.table = tuple(tuple(row) for row in table)
        pairs = [(o, i) for o, row in enumerate(self.table) for i in row]
        self.register_buffer("out_index", torch.tensor([o for o, _ in pairs]), persistent=False)
        self.register_buffer("in_index", torch.tensor([i for _, i in pairs]), persistent=False)
        self.weight = nn.Parameter(torch.empty(len(pairs), kernel_size, kernel_size))  # (n_conn, k, k)
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    def fan_in(self) -> torch.Tensor:
        """Fan-in of each output map: k*k times the number of input maps it is connected to. (out,)"""
        return torch.tensor([len(row) * self.kernel_size**2 for row in self.table])

    def reset_parameters(self) -> None:
        fan_in = self.fan_in()
        with torch.no_grad():
            for k, o in enumerate(self.out_index.tolist()):
                paper_uniform_(self.weight[k], int(fan_in[o]), self.init)
            for o in range(self.out_channels):
                paper_uniform_(self.bias[o : o + 1], int(fan_in[o]), self.init)

    def dense_weight(self, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The (out, in, k, k) kernel with zeros where Table I has no connection."""
        weight = self.weight if weight is None else weight
        k = self.kernel_size
        dense = weight.new_zeros(self.out_channels, self.in_channels, k, k)
        return dense.index_put((self.out_index, self.in_index), weight)

    def mask(self) -> torch.Tensor:
        """1 where an (out, in) pair is connected, else 0. (out, in)"""
        m = torch.zeros(self.out_channels, self.in_channels)
        m[self.out_index, self.in_index] = 1.0
        return m

    def linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(x, self.dense_weight(weight), bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"connections={len(self.out_index)}/{self.in_channels * self.out_channels}"
        )


# The ten RBF prototypes (Fig. 3): each digit drawn on a 7-wide, 12-high bitmap. '#' is +1, '.' is -1.
# The paper shows its bitmaps only as a picture; these are our own drawings. DEVIATION(D2)
RBF_BITMAPS = """
0        1        2        3        4        5        6        7        8        9
.......  .......  .......  .......  .......  .......  .......  .......  .......  .......
..###..  ...##..  .#####.  #######  ....##.  #######  ...###.  #######  .#####.  .#####.
.##.##.  ..###..  ##...##  .....##  ...###.  ##.....  ..##...  .....##  ##...##  ##...##
##...##  .####..  .....##  ....##.  ..#.##.  ##.....  .##....  ....##.  ##...##  ##...##
##...##  ...##..  ....##.  ...##..  .#..##.  ######.  ##.....  ...##..  .#####.  ##...##
##...##  ...##..  ...##..  ..####.  #...##.  .....##  ######.  ...##..  ##...##  .######
##...##  ...##..  ..##...  .....##  #######  .....##  ##...##  ..##...  ##...##  .....##
##...##  ...##..  .##....  .....##  ....##.  .....##  ##...##  ..##...  ##...##  ....##.
.##.##.  ...##..  ##.....  ##...##  ....##.  ##...##  ##...##  ..##...  ##...##  ...##..
..###..  .######  #######  .#####.  ....##.  .#####.  .#####.  ..##...  .#####.  .###...
.......  .......  .......  .......  .......  .......  .......  .......  .......  .......
.......  .......  .......  .......  .......  .......  .......  .......  .......  .......
"""
BITMAP_WIDTH, BITMAP_HEIGHT = 7, 12


def rbf_prototypes(art: str = RBF_BITMAPS) -> torch.Tensor:
    """Parse the text-art bitmaps into the (10, 84) matrix of fixed RBF weights, values -1 or +1."""
    lines = [line for line in art.strip("\n").splitlines() if line.strip()]
    header, rows = lines[0].split(), [line.split() for line in lines[1:]]
    if len(rows) != BITMAP_HEIGHT or any(len(r) != len(header) for r in rows):
        raise ValueError(f"RBF bitmaps must be {BITMAP_HEIGHT} rows of {len(header)} glyphs")
    out = torch.empty(len(header), BITMAP_HEIGHT * BITMAP_WIDTH)
    for c in range(len(header)):
        bits = "".join(r[c] for r in rows)
        if len(bits) != BITMAP_HEIGHT * BITMAP_WIDTH or set(bits) - {"#", "."}:
            raise ValueError(f"RBF bitmap {header[c]} must be {BITMAP_WIDTH}x{BITMAP_HEIGHT} of '#' and '.'")
        out[c] = torch.tensor([1.0 if b == "#" else -1.0 for b in bits])
    return out


class RBFOutput(nn.Module):
    """Euclidean radial basis function output units (Sec. II-B, Eq. 7): y_i = sum_j (x_j - w_ij)^2.

    The w_ij are fixed at +-1 (a buffer, never trained). The outputs are *penalties*: the smallest one
    wins, and a large smallest penalty means the input looks like none of the classes.

    Shapes: (N, 84) -> (N, 10).
    """

    def __init__(self, prototypes: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("prototypes", (rbf_prototypes() if prototypes is None else prototypes).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        diff = x.unsqueeze(1) - self.prototypes.unsqueeze(0)  # (N, 10, 84)
        return diff.pow(2).sum(-1)  # (N, 10)

    def extra_repr(self) -> str:
        n, d = self.prototypes.shape
        return f"in_features={d}, classes={n}, fixed"
