"""Training-step speed of the modernised LeNet-5 on the CPU: channels-last against the default layout.

    python scripts/bench_modern.py [--threads 1] [--batch 128] [--repeats 20]

One AdamW step (forward, cross-entropy, backward, update) on a random batch, timed in alternating rounds
so both layouts see the same machine load; prints the median time of each and their ratio. train() puts
the modern networks in channels-last on the CPU because of this ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lenet5.config import ModelConfig
from lenet5.model import build_model


def step_time(model, opt, x, y, layout, repeats: int) -> list[float]:
    model.to(memory_format=layout)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        loss = F.cross_entropy(model.logits(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads (train() runs each job with --threads)")
    p.add_argument("--batch", type=int, default=128, help="batch size (the modern recipe's is 128)")
    p.add_argument("--repeats", type=int, default=20, help="steps per round; 3 rounds per layout")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="modern"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randn(args.batch, 1, 32, 32), torch.randint(0, 10, (args.batch,))
    layouts = {"contiguous": torch.contiguous_format, "channels-last": torch.channels_last}
    results = {name: [] for name in layouts}
    for layout in layouts.values():  # warm-up: oneDNN picks its kernels on the first calls
        step_time(model, opt, x, y, layout, 3)
    for _ in range(3):
        for name, layout in layouts.items():
            results[name] += step_time(model, opt, x, y, layout, args.repeats)
    med = {name: statistics.median(t) for name, t in results.items()}
    steps = -(-60_000 // args.batch)
    for name, t in med.items():
        print(f"{name:14s} {1000 * t:7.1f} ms/step  ({t * steps:5.0f} s per pass of 60,000)")
    print(f"channels-last is {med['contiguous'] / med['channels-last']:.2f}x the default layout's speed")


if __name__ == "__main__":
    main()
