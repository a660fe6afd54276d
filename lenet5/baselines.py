"""The k-nearest-neighbour baseline of Fig. 9 (Euclidean distance on the 28x28 pixels).

The other Fig. 9 baselines (the linear classifier and the 28x28-300-10 network) are trained networks:
``ModelConfig(arch="linear")`` and ``ModelConfig(arch="mlp300")``.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def knn_predict(
    x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, k: int = 3, chunk: int = 500
) -> torch.Tensor:
    """Labels of ``x_test`` by a vote of its k nearest training patterns (Euclidean, on the 28x28 crop).

    With k = 3 the majority wins and a three-way tie goes to the nearest. The inputs are in the paper's
    field scaling, an affine map of the raw pixels, so distances rank neighbours as raw pixels would.
    """
    if k not in (1, 3):
        raise ValueError(f"k must be 1 or 3, got {k}")
    a = x_train[..., 2:30, 2:30].flatten(1).float()  # (N, 784)
    a_sq = (a * a).sum(1)  # (N,)
    out = []
    for start in range(0, len(x_test), chunk):
        b = x_test[start : start + chunk, :, 2:30, 2:30].flatten(1).float()  # (M, 784)
        d = a_sq[None, :] - 2.0 * b @ a.T  # (M, N): squared distance minus |b|^2, which ranks alike
        labels = y_train[d.topk(k, dim=1, largest=False).indices]  # (M, k), nearest first
        if k == 3:  # the two farther ones agree: theirs is the majority; else the nearest's (or all three's)
            out.append(torch.where(labels[:, 1] == labels[:, 2], labels[:, 1], labels[:, 0]))
        else:
            out.append(labels[:, 0])
    return torch.cat(out)
