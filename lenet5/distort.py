"""Random planar affine distortions of the training set (Sec. III-C, Fig. 7).

The paper enlarged the 60,000 training digits with 540,000 distorted copies (9 per digit) made of
horizontal and vertical translation, scaling, squeezing (horizontal compression with vertical
elongation, or the reverse) and horizontal shearing, then trained 20 passes of 60,000 patterns
drawn from the 600,000. The paper gives no magnitudes; ours are DEVIATION(D6), in :data:`RANGES`.

We never store the 540,000 copies: copy k of digit i is generated on the fly from its own fixed
parameters, so the set is fixed by the seed and each pass draws, for every digit, one of its ten
versions (the original or one of 9 copies). DEVIATION(D10): the paper does not say how the 60,000
patterns of a pass were drawn from the 600,000; ours shows every digit once per pass.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .config import PIXEL_BACKGROUND, PIXEL_FOREGROUND, TTA_VIEWS

# Uniform ranges of the five distortion parameters. DEVIATION(D6): our choice, sized so that the
# central 20x20 box of the 32x32 field (where MNIST puts the digit) always stays inside the field.
RANGES = {
    "tx": (-1.5, 1.5),  # horizontal translation, pixels
    "ty": (-1.5, 1.5),  # vertical translation, pixels
    "scale": (0.9, 1.1),  # isotropic scaling factor
    "squeeze": (0.9, 1.1),  # x scaled by q and y by 1/q: horizontal compression + vertical elongation or the reverse
    "shear": (-0.2, 0.2),  # horizontal shear: x' = x + shear * y
}
COPIES = 9  # distorted copies per training digit (540,000 / 60,000)
# Wider ranges for the fresh-every-pass augmentation of modern training (--augment); our choice.
AUGMENT_RANGES = {
    "tx": (-2.5, 2.5),
    "ty": (-2.5, 2.5),
    "scale": (0.85, 1.15),
    "squeeze": (0.9, 1.1),
    "shear": (-0.3, 0.3),
}
# Elastic distortions (Simard et al., 2003) for --elastic: a uniform(-1, 1) displacement per pixel and axis,
# smoothed by a Gaussian of this width (pixels) and scaled by alpha. Our choice of width.
ELASTIC_SIGMA = 4.0


def sample_params(n: int, rng: np.random.Generator, ranges: dict = RANGES) -> np.ndarray:
    """(n, 5) distortion parameters (tx, ty, scale, squeeze, shear), uniform in ``ranges``."""
    lo = np.array([r[0] for r in ranges.values()])
    hi = np.array([r[1] for r in ranges.values()])
    return (lo + (hi - lo) * rng.random((n, len(RANGES)))).astype(np.float32)


def affine_matrices(params: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The forward maps (output pixel offsets from the field centre, as functions of input offsets).

    Returns (n, 2, 3): [x', y'] = M [x, y, 1] in pixels, with x to the right and y down.
    """
    p = torch.as_tensor(np.asarray(params), dtype=torch.float64)
    tx, ty, scale, squeeze, shear = p.unbind(1)
    sx, sy = scale * squeeze, scale / squeeze
    m = torch.zeros(len(p), 2, 3, dtype=torch.float64)
    m[:, 0, 0] = sx
    m[:, 0, 1] = shear * sy  # shear after scaling: x' = sx x + shear (sy y)
    m[:, 1, 1] = sy
    m[:, 0, 2] = tx
    m[:, 1, 2] = ty
    return m


def distort(fields: torch.Tensor, params: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Apply one affine distortion per image to inputs already in the paper's field.

    Args:
        fields: (N, 1, S, S) inputs scaled to [-0.1, 1.175] (background -0.1).
        params: (N, 5) parameters from :func:`sample_params`.

    Returns:
        (N, 1, S, S) distorted inputs, bilinear interpolation, background outside the original field.
    """
    return warp(fields, affine_matrices(params))


def augment(fields: torch.Tensor, rng: np.random.Generator, rotate: float = 0.0, elastic: float = 0.0) -> torch.Tensor:
    """A fresh random distortion of every input (--augment): an affine map drawn from AUGMENT_RANGES,
    then optionally a rotation by up to +-``rotate`` degrees and an elastic displacement of strength
    ``elastic`` (alpha, pixels; ELASTIC_SIGMA). With both 0 it draws exactly what it drew before they existed."""
    n = len(fields)
    m = affine_matrices(sample_params(n, rng, AUGMENT_RANGES))
    if rotate > 0:
        theta = torch.as_tensor(np.radians(rng.uniform(-rotate, rotate, n)), dtype=torch.float64)
        c, s = torch.cos(theta), torch.sin(theta)
        r = torch.stack([torch.stack([c, -s], 1), torch.stack([s, c], 1)], 1)  # (n, 2, 2)
        m = torch.cat([m[:, :, :2] @ r, m[:, :, 2:]], dim=2)
    displacement = elastic_displacement(n, fields.shape[-1], elastic, rng) if elastic > 0 else None
    return warp(fields, m, displacement)


def view_maps(views: str | list[tuple[float, float, float, float]]) -> torch.Tensor:
    """(V, 2, 3) forward maps for :func:`warp` of the test-time views ``TTA_VIEWS[views]`` (a name) or of
    a list of (dx, dy, degrees, scale)."""
    if isinstance(views, str):
        if views not in TTA_VIEWS:
            raise ValueError(f"unknown test-time augmentation {views!r}; choose from {', '.join(TTA_VIEWS)}")
        views = TTA_VIEWS[views]
    v = torch.tensor(views, dtype=torch.float64)
    if v.ndim != 2 or v.shape[1] != 4:
        raise ValueError(f"test-time views are (dx, dy, degrees, scale) rows, got shape {tuple(v.shape)}")
    dx, dy, theta, k = v[:, 0], v[:, 1], torch.deg2rad(v[:, 2]), v[:, 3]
    c, s = k * torch.cos(theta), k * torch.sin(theta)
    return torch.stack([torch.stack([c, -s, dx], 1), torch.stack([s, c, dy], 1)], 1)


def elastic_displacement(n: int, size: int, alpha: float, rng: np.random.Generator, sigma: float = ELASTIC_SIGMA):
    """(n, size, size, 2) smooth random displacements in pixels (x, y): uniform(-1, 1) noise per pixel and
    axis, convolved with a normalised Gaussian of width ``sigma``, times ``alpha``."""
    noise = torch.as_tensor(rng.uniform(-1.0, 1.0, (2 * n, 1, size, size)), dtype=torch.float32)
    radius = int(math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    smooth = F.conv2d(noise, g.view(1, 1, 1, -1), padding=(0, radius))  # along x, then along y
    smooth = F.conv2d(smooth, g.view(1, 1, -1, 1), padding=(radius, 0))
    return (alpha * smooth).view(n, 2, size, size).permute(0, 2, 3, 1)


def warp(fields: torch.Tensor, m: torch.Tensor, displacement: torch.Tensor | None = None) -> torch.Tensor:
    """Apply the forward affine maps ``m`` (N, 2, 3), in pixels about the field centre, to (N, 1, S, S)
    inputs: bilinear, background outside the original field. ``displacement`` (N, S, S, 2), pixels, moves
    where each output pixel reads its input after the affine map (elastic distortions)."""
    n, _, size, _ = fields.shape
    # grid_sample needs the inverse map (output -> input) in normalised coordinates [-1, 1].
    lin, shift = m[:, :, :2], m[:, :, 2:]
    inv_lin = torch.linalg.inv(lin)
    inv_shift = -inv_lin @ shift
    half = size / 2.0
    theta = torch.cat([inv_lin, inv_shift / half], dim=2).to(fields.device, torch.float32)  # (N, 2, 3)
    grid = F.affine_grid(theta, (n, 1, size, size), align_corners=False)
    if displacement is not None:
        grid = grid + displacement.to(grid.device, grid.dtype) / half
    ink = fields - PIXEL_BACKGROUND  # background 0, so zero padding is background
    out = F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + PIXEL_BACKGROUND


def salt_and_pepper(fields: torch.Tensor, p: float, rng: np.random.Generator) -> torch.Tensor:
    """Flip each pixel with probability ``p`` (Sec. III-E, Fig. 13): background becomes full ink and ink
    background; grey levels are mirrored, v -> (-0.1 + 1.175) - v. Returns a new tensor."""
    flip = torch.as_tensor(rng.random(fields.shape) < p, device=fields.device)
    return torch.where(flip, (PIXEL_BACKGROUND + PIXEL_FOREGROUND) - fields, fields)


class DistortedSet:
    """The paper's 600,000-pattern set: each of the N training digits and its 9 fixed distorted copies.

    Args:
        fields: (N, 1, 32, 32) training inputs.
        seed: fixes every copy's parameters.
    """

    def __init__(self, fields: torch.Tensor, seed: int) -> None:
        self.fields = fields
        rng = np.random.default_rng([seed, 0xD157])
        self.params = sample_params(len(fields) * COPIES, rng).reshape(len(fields), COPIES, len(RANGES))

    def __len__(self) -> int:
        return len(self.fields) * (COPIES + 1)

    def versions_for_pass(self, rng: np.random.Generator) -> np.ndarray:
        """For one pass, which version of each digit to show: 0 = the original, 1..9 = a copy. (N,)"""
        return rng.integers(0, COPIES + 1, size=len(self.fields))

    def patterns(self, index: np.ndarray, version: np.ndarray, batch: int = 4096) -> torch.Tensor:
        """The inputs for digits ``index`` shown as ``version`` (same length), in that order."""
        out = self.fields[torch.as_tensor(index)]  # indexing copies
        distorted = np.flatnonzero(version > 0)
        for start in range(0, len(distorted), batch):
            rows = distorted[start : start + batch]
            params = self.params[index[rows], version[rows] - 1]
            out[torch.as_tensor(rows)] = distort(out[torch.as_tensor(rows)], params)
        return out
