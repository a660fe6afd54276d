"""Where the compiled engine's time goes: each layer of its forward pass timed on its own, per image.

The layer blocks are cut out of ``lenet5.engine._forward`` at its "# C1", "# S2", ... comments and compiled
as separate functions with the same settings, so what is timed is the engine's own code. Each block runs
on buffers filled by a real forward pass of MNIST test digits. Also prints the forward and backward pass
of one image, the machine's measured matrix-multiply rate, and what fraction of it the engine reaches.

Usage: python scripts/profile_engine.py [--images 2000]
"""

from __future__ import annotations

import argparse
import inspect
import re
import textwrap
import time

import numba
import numpy as np
import torch

import lenet5.engine as engine
from lenet5 import load_mnist, load_model

MARKERS = ["C1", "S2", "C3", "S4", "C5", "F6", "RBF"]
MACS = {"C1": 117_600, "S2": 5_880, "C3": 150_000, "S4": 2_000, "C5": 48_000, "F6": 10_080, "RBF": 840}


def layer_kernels() -> dict:
    """One njit function per layer block of _forward: f(xf, weights, table_out, table_in, prototypes, buffers)."""
    source = inspect.getsource(engine._forward.py_func)
    body = source.split('"""', 2)[2]  # after the docstring
    preamble, rest = body.split("    # C1", 1)
    rest = "    # C1" + rest
    starts = [rest.index(f"    # {m}") for m in MARKERS] + [rest.index("    return best")]
    kernels = {}
    for name, a, b in zip(MARKERS, starts, starts[1:], strict=False):
        block = rest[a:b]
        if name == "C5" or name == "F6" or name == "RBF":
            block = "    o4f = o4.reshape(400)\n" + block
        if name == "RBF":
            block += "    return best\n"
        code = f"def layer(xf, weights, table_out, table_in, prototypes, buffers):{preamble}{block}\n    return 0\n"
        code = re.sub(r"\n    return 0\n$", "\n    return 0\n", code)
        namespace = dict(vars(engine))
        exec(textwrap.dedent(code), namespace)  # noqa: S102 - our own source, re-compiled
        kernels[name] = numba.njit(error_model="numpy", fastmath=True)(namespace["layer"])
    return kernels


def per_image_us(fn, n: int, repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    args = parser.parse_args()
    x, y = load_mnist("test", limit=args.images)
    xs = x.numpy().reshape(-1, 32, 32)
    model = load_model("paper")
    eng = engine.NumbaEngine(model)
    w, to, ti, pr, buf = eng.weights, eng.table_out, eng.table_in, eng.prototypes, eng.buffers
    kernels = layer_kernels()

    @numba.njit(error_model="numpy", fastmath=True)
    def run_layer(layer, forward, xs, w, to, ti, pr, buf, repeats):
        for p in range(xs.shape[0]):
            xf = xs[p].reshape(1024)
            forward(xf, w, to, ti, pr, buf)  # fill every buffer for this image
            for _ in range(repeats):  # then run one layer again and again on them
                layer(xf, w, to, ti, pr, buf)

    n = len(xs)
    forward_only = per_image_us(lambda: engine._infer_chunk(xs, w, to, ti, pr, buf, np.empty((n, 10), np.float32)), n)
    print(f"forward pass, one image, one thread: {forward_only:6.1f} us  ({1e6 / forward_only:,.0f} images/s/thread)")
    print(f"{'layer':6} {'us/image':>9} {'share':>6} {'MACs':>8} {'GMAC/s':>7}  (each layer alone, warm caches)")
    total = 0.0
    rows = []
    repeats = 20
    for name, kernel in kernels.items():
        both = per_image_us(lambda k=kernel: run_layer(k, engine._forward, xs, w, to, ti, pr, buf, repeats), n)
        cost = (both - forward_only) / repeats  # one more run of the layer, on buffers of a real image
        rows.append((name, cost))
        total += cost
    print(f"sum of the layers alone: {total:.1f} us of the {forward_only:.1f} us of a whole pass")
    for name, cost in rows:
        print(f"{name:6} {cost:9.1f} {cost / total:6.0%} {MACS[name]:8,} {MACS[name] / cost / 1e3 if cost else 0:7.2f}")
    steps = engine.NumbaEngine(model)
    steps.set_steps([p.detach() * 0 for p in model.parameters()])  # zero steps: weights stay as they are
    train = per_image_us(lambda: steps.train(xs, y.numpy()), n)
    print(f"forward + backward + update, one image: {train:6.1f} us  ({1e6 / train:,.0f} patterns/s)")
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    t = per_image_us(lambda: a @ a, 1, 3) / 1e6
    peak = 2 * 2048**3 / t / 1e9
    print(f"sgemm 2048^3 with {torch.get_num_threads()} threads: {peak:.0f} GFLOP/s")
    fwd_gflops = 2 * 334_400 / (forward_only * 1e-6) / 1e9
    print(
        f"engine forward: {fwd_gflops:.1f} GFLOP/s on one thread"
        f" = {fwd_gflops / (peak / 2):.0%} of one core's sgemm rate"
    )


if __name__ == "__main__":
    main()
