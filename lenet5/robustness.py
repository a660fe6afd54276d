"""Robustness curves in the spirit of Sec. III-E: test error as the test digits are transformed.

The paper claims LeNet-5 reads digits scaled by up to a factor of about 2, shifted vertically by about
half the character's height, rotated by up to about +-30 degrees, and (when trained for it, Fig. 13)
with salt-and-pepper noise flipping each pixel with probability 0.1. It shows examples, not curves;
these curves measure each claim on the MNIST test set. Every transform acts on the 32x32 field about
its centre, so a digit scaled by 2 (40 pixels high) is clipped by the field's edge.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .distort import salt_and_pepper, warp

# The values of each study. The MNIST digit is about 20 pixels high, so half its height is 10 pixels.
STUDIES: dict[str, list[float]] = {
    "scale": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0],  # factor
    "shift": [-10, -8, -6, -4, -2, 0, 2, 4, 6, 8, 10],  # vertical, pixels (positive = down)
    "rotate": [-30, -25, -20, -15, -10, -5, 0, 5, 10, 15, 20, 25, 30],  # degrees, clockwise
    "noise": [0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2],  # flip probability
}
UNITS = {"scale": "scale factor", "shift": "vertical shift (pixels)", "rotate": "rotation (degrees)",
         "noise": "salt-and-pepper flip probability"}  # fmt: skip


def transform(x: torch.Tensor, study: str, value: float, seed: int = 0) -> torch.Tensor:
    """The test inputs ``x`` (N, 1, 32, 32) transformed by one study's ``value``."""
    n = len(x)
    m = torch.zeros(n, 2, 3, dtype=torch.float64)
    if study == "scale":
        m[:, 0, 0] = m[:, 1, 1] = value
    elif study == "shift":
        m[:, 0, 0] = m[:, 1, 1] = 1.0
        m[:, 1, 2] = value
    elif study == "rotate":
        c, s = math.cos(math.radians(value)), math.sin(math.radians(value))
        m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c  # y points down: clockwise on screen
    elif study == "noise":
        return salt_and_pepper(x, value, np.random.default_rng([seed, 0x5A17])) if value > 0 else x.clone()
    else:
        raise ValueError(f"unknown study {study!r}; expected one of {', '.join(STUDIES)}")
    return warp(x, m)


@torch.no_grad()
def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: str = "cpu", batch: int = 1000) -> float:
    wrong = 0
    for start in range(0, len(x), batch):
        pred = model(x[start : start + batch].to(device)).argmin(1).cpu()
        wrong += int((pred != y[start : start + batch]).sum())
    return 100.0 * wrong / max(len(x), 1)


def robustness(
    models: dict[str, nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    studies: list[str] | None = None,
    device: str = "cpu",
    progress=None,
) -> dict:
    """Test error of each model at each value of each study.

    Returns:
        {"n": N, "studies": {study: {"values": [...], "unit": str, "errors": {model: [percent, ...]}}}}
    """
    out = {"n": len(x), "studies": {}}
    for study in studies or list(STUDIES):
        values = STUDIES[study]
        errors = {name: [] for name in models}
        for value in values:
            xt = transform(x, study, value)
            for name, model in models.items():
                errors[name].append(error_rate(model.eval(), xt, y, device))
            if progress:
                progress(f"{study} {value}: " + "  ".join(f"{k} {v[-1]:.2f}%" for k, v in errors.items()))
        out["studies"][study] = {"values": values, "unit": UNITS[study], "errors": errors}
    return out


def markdown(result: dict) -> str:
    """One table per study: a row per model, a column per value."""
    lines = []
    for r in result["studies"].values():
        lines += [f"**{r['unit']}** (test error %, {result['n']} digits)", ""]
        lines.append("| model | " + " | ".join(f"{v:g}" for v in r["values"]) + " |")
        lines.append("|---|" + "---|" * len(r["values"]))
        for name, errs in r["errors"].items():
            lines.append(f"| {name} | " + " | ".join(f"{e:.1f}" for e in errs) + " |")
        lines.append("")
    return "\n".join(lines)
