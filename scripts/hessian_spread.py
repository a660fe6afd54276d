"""Where SDLM's curvature estimates h_kk lie, per layer, at the printed initialisation and at the shipped
weights (PAPER_NOTES.md, "What we found", finding 8). Estimated on 500 random training digits, as before a pass.

    .venv/bin/python scripts/hessian_spread.py
"""

from __future__ import annotations

import torch

from lenet5.checkpoint import load_model
from lenet5.config import ModelConfig
from lenet5.data import load_mnist
from lenet5.model import LeNet5
from lenet5.optim import SDLM


def main() -> None:
    x, _ = load_mnist("train", quiet=True)
    torch.manual_seed(0)
    sample = x[torch.randperm(len(x))[:500]]
    for name, model in (
        ("printed initialisation", LeNet5(ModelConfig())),
        ("shipped 'paper' weights", load_model("paper")),
    ):
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        opt = SDLM([p for _, p in named], lr=5e-4, mu=0.5)
        opt.estimate_hessian(model, sample)
        print(name)
        for n, p in named:
            h = opt.state[p]["hessian"].flatten()
            print(f"  {n:12s} {h.numel():6d}  min {h.min():.2e}  median {h.median():.2e}  max {h.max():.2e}")
        h = torch.cat([opt.state[p]["hessian"].flatten() for _, p in named])
        below = float((h < 0.02).float().mean())
        print(f"  all {h.numel()}: {below:.1%} below 0.02, min {h.min():.2e}, max {h.max():.2e}")


if __name__ == "__main__":
    main()
