"""How many per-pattern SDLM updates float32 weights cannot hold, at the shipped paper weights (finding 15).

A pattern's update -eps_k dE_p/dw_k is lost when w_k - update rounds back to w_k in float32. Counted over
the nonzero updates of 1,000 training patterns, each from the same weights, for each eta of the schedule,
with mu = 0.5 and h_kk estimated on 500 training patterns as in training.

    python results/precision/lost_updates.py
"""

import torch

from lenet5 import SDLM, load_mnist, load_model, map_loss

model = load_model("paper").train()
x, y = load_mnist("train", quiet=True)
g = torch.Generator().manual_seed(0)
order = torch.randperm(len(x), generator=g)
params = list(model.parameters())
opt = SDLM(params, lr=1.0, mu=0.5)
opt.estimate_hessian(model, x[order[:500]])
unit_steps = opt.step_sizes()  # 1 / (mu + h_kk)
for eta in (5e-4, 2e-4, 1e-4, 5e-5, 1e-5):
    lost = nonzero = 0
    for i in order[500:1500]:
        model.zero_grad()
        map_loss(model(x[i : i + 1]), y[i : i + 1]).backward()
        for p, e in zip(params, unit_steps, strict=True):
            step = (eta * e * p.grad).float()
            moved = step != 0
            nonzero += int(moved.sum())
            lost += int(((p.detach() - step) == p.detach())[moved].sum())
    print(f"eta {eta:.0e}: {100 * lost / nonzero:.1f}% of {nonzero:,} nonzero updates rounded away")
