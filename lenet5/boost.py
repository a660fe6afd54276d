"""Boosted LeNet-4 (Sec. III-C, Fig. 9): three networks whose outputs are added.

The paper, after Drucker, Schapire and Simard: net 1 is trained the usual way; net 2 on patterns
filtered by net 1 so that half of them are ones net 1 gets right and half ones it gets wrong; net 3
on new patterns on which nets 1 and 2 disagree. Net 1 errs so rarely that the filtered patterns were
drawn from distorted digits. Our choices (DEVIATION(D13)): net 1 trains on the distorted set (D10),
nets 2 and 3 on 60,000 filtered patterns each, drawn from fresh random distortions (D6's ranges) of the
training digits; all three with the recipe they are given (the comparison's row uses D14's).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_model
from .config import TrainConfig
from .data import load_mnist
from .distort import distort, sample_params
from .errors import Lenet5Error
from .fileio import atomic_path, atomic_write_text
from .model import Ensemble
from .train import evaluate, train

FILTER_CHUNK = 20_000  # distorted patterns per round of filtering
MAX_DRAWN_PER_KEPT = 100  # give up after drawing 100 patterns per wanted one (at least 1 million)


@torch.no_grad()
def filtered_set(
    nets: list[torch.nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    size: int,
    rule: str,
    seed: int,
    device: str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Draw fresh distortions of the digits ``x`` until ``size`` patterns pass the filter.

    Args:
        rule: 'half-wrong' (net 2: half the patterns nets[0] gets wrong, half it gets right) or
            'disagree' (net 3: nets[0] and nets[1] give different answers).

    Returns:
        x (size, 1, 32, 32), y (size,), and counts {"drawn": ..., "kept": ...}.
    """
    rng = np.random.default_rng([seed, 0xB005, len(nets)])
    x, y = x.to(device), y.to(device)
    want = {"wrong": size // 2, "right": size - size // 2} if rule == "half-wrong" else {"disagree": size}
    kept: dict[str, list] = {k: [] for k in want}
    have = dict.fromkeys(want, 0)
    drawn = 0
    limit = max(1_000_000, MAX_DRAWN_PER_KEPT * size)
    while drawn < limit:
        if all(have[k] >= want[k] for k in want):
            break
        index = torch.as_tensor(rng.integers(0, len(x), FILTER_CHUNK), device=x.device)
        xb = distort(x[index], sample_params(FILTER_CHUNK, rng))
        yb = y[index]
        preds = [net(xb).argmin(1) for net in nets]
        drawn += FILTER_CHUNK
        if rule == "half-wrong":
            masks = {"wrong": preds[0] != yb, "right": preds[0] == yb}
        else:
            masks = {"disagree": preds[0] != preds[1]}
        for k, mask in masks.items():
            take = torch.nonzero(mask).flatten()[: want[k] - have[k]]
            kept[k].append((xb[take], yb[take]))
            have[k] += len(take)
    if not all(have[k] >= want[k] for k in want):
        raise Lenet5Error(f"filtering for net {len(nets) + 1} found only {have} of {want} in {drawn} patterns")
    xs = torch.cat([a for k in want for a, _ in kept[k]]).cpu()
    ys = torch.cat([b for k in want for _, b in kept[k]]).cpu()
    mix = torch.as_tensor(rng.permutation(len(xs)))
    return xs[mix], ys[mix], {"drawn": drawn, "kept": have}


def _train_or_reuse(config: TrainConfig, log, progress: bool = True) -> Path:
    """Train one member, or reuse its finished run, or resume its interrupted one."""
    run_dir = Path(config.out_dir) / str(config.run_name)
    if (run_dir / "weights.pt").exists():
        log(f"{run_dir}: already trained")
    elif (run_dir / "checkpoint.pt").exists():
        train(None, resume=run_dir, log=log, progress=progress)
    else:
        train(config, log=log, progress=progress)
    return run_dir


def train_boosted(
    config: TrainConfig, size: int = 60_000, log: Callable[[str], None] | None = None, progress: bool = True
) -> dict:
    """Train the three nets of boosted ``config.model.arch`` under ``config.out_dir/config.run_name``.

    Each member is an ordinary run directory (net1, net2, net3); boost.json holds the result. An
    interrupted job continues where it stopped when run again.
    """
    log = log or (lambda s: print(s, flush=True))
    root = Path(config.out_dir) / (config.run_name or f"boost-{config.model.arch}-s{config.seed}")
    member = dataclasses.replace(config, out_dir=str(root), augment=False, noise=0.0)
    runs = [_train_or_reuse(dataclasses.replace(member, run_name="net1", distort=True), log, progress)]
    x_train, y_train = load_mnist("train", config.data_dir, config.dataset, config.train_subset, quiet=not progress)
    counts = {}
    for k, rule in ((2, "half-wrong"), (3, "disagree")):
        set_file = root / f"net{k}-train.pt"
        if not set_file.exists():
            nets = [load_model(r / "weights.pt", config.device) for r in runs]
            xs, ys, counts[f"net{k}"] = filtered_set(nets, x_train, y_train, size, rule, config.seed, config.device)
            log(f"net {k}: kept {counts[f'net{k}']['kept']} of {counts[f'net{k}']['drawn']} distorted patterns")
            with atomic_path(set_file) as tmp:
                torch.save({"x": xs, "y": ys}, tmp)
        runs.append(
            _train_or_reuse(
                dataclasses.replace(member, run_name=f"net{k}", distort=False, train_file=str(set_file)),
                log,
                progress,
            )
        )
    x_test, y_test = load_mnist("test", config.data_dir, config.dataset, config.test_subset, quiet=not progress)
    nets = [load_model(r / "weights.pt", config.device) for r in runs]
    members = [evaluate(net, x_test, y_test, device=config.device)["error_rate"] for net in nets]
    result = evaluate(Ensemble(nets).eval(), x_test, y_test, device=config.device)
    summary = {
        "error_rate": result["error_rate"],
        "misses": result["misses"],
        "n": result["n"],
        "members": [str(r) for r in runs],
        "member_errors": members,
        "filter_counts": counts,
        "seconds": sum(_run_seconds(r) for r in runs),
    }
    atomic_write_text(root / "boost.json", json.dumps(summary, indent=1) + "\n")
    log(
        f"boosted {config.model.arch}: test error {result['error_rate']:.2f}% "
        f"(members {', '.join(f'{e:.2f}%' for e in members)}; paper, boosted LeNet-4: 0.7%)"
    )
    return summary


def _run_seconds(run_dir: Path) -> float:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return sum(json.loads(line)["seconds"] for line in lines if line.strip())
