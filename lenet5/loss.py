"""The two training criteria of Sec. II-C, on the RBF penalties y_i(Z_p) of a batch of patterns."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mse_loss(penalties: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Eq. 8: E = (1/P) sum_p y_{D_p}(Z_p), the mean penalty of the correct class.

    Args:
        penalties: (P, 10) RBF outputs.
        targets: (P,) int64 class indices D_p.
    """
    return penalties.gather(1, targets[:, None]).mean()


def map_loss(penalties: torch.Tensor, targets: torch.Tensor, j: float = 0.1) -> torch.Tensor:
    """Eq. 9, the discriminative "MAP" criterion:
    E = (1/P) sum_p [ y_{D_p}(Z_p) + log(e^{-j} + sum_i e^{-y_i(Z_p)}) ].

    The log term pushes the wrong classes' penalties up; e^{-j} (a "rubbish" class, j > 0) keeps it
    from pushing the correct class's penalty up once the other classes are already far away.
    """
    if j <= 0:
        raise ValueError(f"j must be > 0, got {j}")
    correct = penalties.gather(1, targets[:, None]).squeeze(1)  # (P,)
    rubbish = torch.full_like(correct, -j)[:, None]  # (P, 1)
    log_term = torch.logsumexp(torch.cat([rubbish, -penalties], dim=1), dim=1)  # (P,)
    return (correct + log_term).mean()


def ce_loss(penalties: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy with -penalties as logits: for the softmax networks, whose penalties are -log p, the
    mean penalty of the correct class (Eq. 8 read on -log p) when there is no label smoothing."""
    return F.cross_entropy(-penalties, targets, label_smoothing=label_smoothing)


def loss_fn(name: str, j: float = 0.1, label_smoothing: float = 0.0):
    """The criterion called ``name`` ('mse' for Eq. 8, 'map' for Eq. 9, 'ce') as f(penalties, targets)."""
    if name == "mse":
        return mse_loss
    if name == "map":
        return lambda penalties, targets: map_loss(penalties, targets, j)
    if name == "ce":
        return lambda penalties, targets: ce_loss(penalties, targets, label_smoothing)
    raise ValueError(f"unknown loss {name!r}; expected mse, map or ce")
