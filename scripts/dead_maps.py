"""Switched-off feature maps in trained LeNet-5s (PAPER_NOTES.md, finding 14).

A subsampling map whose trainable coefficient ends near 0 passes (almost) nothing on: its C1 or C3 map is
lost to the network. For each run directory (it needs its weights.pt), this prints the final test and training
error, how many S2 and S4 coefficients end within 0.05 of 0, what those started at (the run's seed rebuilds the
initial weights), and how many C1 kernels stay small (norm < 0.5; they start at about 0.27).

    .venv/bin/python scripts/dead_maps.py runs/paper-s*
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from lenet5.checkpoint import load_model
from lenet5.config import ModelConfig
from lenet5.model import build_model

OFF = 0.05  # |coefficient| below this at the end: the map is switched off


def describe(run: Path) -> str:
    config = json.loads((run / "config.json").read_text())
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    torch.manual_seed(config["seed"])  # as lenet5.train does before building the network
    start = build_model(ModelConfig(**config["model"]))
    end = load_model(run / "weights.pt", engine="torch")
    parts = [f"{run.name:<18} test {last['test_error']:5.2f}%  train {last['train_error']:5.2f}%"]
    for layer in ("s2", "s4"):
        w0, w1 = getattr(start, layer).weight.detach(), getattr(end, layer).weight.detach()
        off = (w1.abs() < OFF).nonzero().flatten().tolist()
        began = ", ".join(f"{float(w0[i]):+.2f}" for i in off)
        parts.append(f"{layer.upper()} off {len(off):2d}/{len(w1)}" + (f" (started {began})" if off else ""))
    small = int((end.c1.weight.detach().flatten(1).norm(dim=1) < 0.5).sum())
    parts.append(f"small C1 kernels {small}/6")
    return "  ".join(parts)


def main(argv: list[str]) -> int:
    runs = [Path(a) for a in argv if (Path(a) / "weights.pt").exists()]
    if not runs:
        print("usage: dead_maps.py RUN_DIR... (run directories with weights.pt)", file=sys.stderr)
        return 2
    for run in runs:
        print(describe(run))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
