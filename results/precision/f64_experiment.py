"""Experiment: per-pattern SDLM with float64 master weights (PAPER_NOTES, finding 15).

Late in the paper's schedule (eta = 1e-5) many per-pattern updates are smaller than half a float32 unit of
the weight they change and are rounded away. Here the engine's per-pattern pass keeps a float64 copy of every
weight, applies each pattern's update to it, and writes the rounded values back into the float32 model after
each chunk, so no update is lost; activations, gradients and the step sizes stay float32 as before.

    python results/precision/f64_experiment.py train --seed S --quiet --threads 1 --out-dir DIR --run-name NAME
"""

import sys

import numpy as np

import lenet5.engine as engine

_train = engine.NumbaEngine.train


def train64(self, xs, labels):
    shadow = getattr(self, "shadow", None)
    # (re)start from the float32 model when it was changed from outside (a fresh engine, a resumed run)
    if shadow is None or any(
        not np.array_equal(w, s.astype(np.float32)) for w, s in zip(self.weights, shadow, strict=True)
    ):
        shadow = self.shadow = tuple(w.astype(np.float64) for w in self.weights)
    views, self.weights = self.weights, shadow  # the same pass, on the float64 copies
    try:
        result = _train(self, xs, labels)
    finally:
        self.weights = views
    for w, s in zip(views, shadow, strict=True):
        w[...] = s  # rounded to float32
    return result


if __name__ == "__main__":
    engine.NumbaEngine.train = train64
    from lenet5.__main__ import main

    sys.exit(main(sys.argv[1:]))
