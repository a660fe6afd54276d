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


def train64(self, xs, labels):
    if self.steps is None:
        raise RuntimeError("call set_steps() before train()")
    shadow = getattr(self, "shadow", None)
    # (re)start from the float32 model when it was changed from outside (a fresh engine, a resumed run)
    if shadow is None or any(
        not np.array_equal(w, s.astype(np.float32)) for w, s in zip(self.weights, shadow, strict=True)
    ):
        shadow = self.shadow = tuple(w.astype(np.float64) for w in self.weights)
    xs, labels = self._inputs(xs, labels)
    loss, errors = engine._patterns(
        xs, labels, shadow, self.steps, True, self.table_out, self.table_in, self.prototypes,
        self.loss_kind, np.float32(self.j), self.buffers,
    )  # fmt: skip
    for w, s in zip(self.weights, shadow, strict=True):
        w[...] = s  # rounded to float32
    return float(loss), int(errors)


if __name__ == "__main__":
    engine.NumbaEngine.train = train64
    from lenet5.__main__ import main

    sys.exit(main(sys.argv[1:]))
