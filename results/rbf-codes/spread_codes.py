"""Experiment behind PAPER_NOTES finding 13 (not part of the package): the default recipe with other RBF codes.

Replaces the drawn bitmaps by a +-1 code whose ten rows are as far apart as a random search finds (min Hamming
distance 38 of 84, against 13 for our drawings), then runs the lenet5 CLI:
    python results/rbf-codes/spread_codes.py spread train --seed S --quiet --threads 1 --out-dir DIR --run-name NAME
"""

import itertools
import sys

import numpy as np
import torch

import lenet5.layers as layers


def spread_code(seed: int = 0, tries: int = 20000) -> tuple[torch.Tensor, int]:
    """The (10, 84) +-1 code with the largest minimum Hamming distance among ``tries`` random ones."""
    rng = np.random.default_rng(seed)
    best, best_min = None, -1
    for _ in range(tries):
        code = np.where(rng.random((10, 84)) < 0.5, 1.0, -1.0)
        d = min(int((code[i] != code[j]).sum()) for i, j in itertools.combinations(range(10), 2))
        if d > best_min:
            best, best_min = code, d
    return torch.tensor(best, dtype=torch.float32), best_min


if __name__ == "__main__":
    if sys.argv[1] == "spread":
        code, dmin = spread_code()
        print("spread code, min Hamming distance", dmin, file=sys.stderr)
        layers.rbf_prototypes = lambda art=None: code.clone()  # RBFOutput builds its prototypes from this
    from lenet5.__main__ import main

    sys.exit(main(sys.argv[2:]))
