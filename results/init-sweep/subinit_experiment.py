"""Experiment behind PAPER_NOTES finding 14 (run before --subsample-init existed; that option now does the same).

Subsampling coefficients start away from zero: w = sign(u) (b + |u|) / 2 for Appendix A's draw u ~ U(-b, b).
    python results/init-sweep/subinit_experiment.py train --seed S --quiet --threads 1 --out-dir DIR --run-name NAME
"""

import sys

import torch

import lenet5.layers as layers

_reset = layers.Subsampling.reset_parameters


def reset(self):
    _reset(self)
    with torch.no_grad():
        b = layers.init_bound(self.fan_in(), self.init)
        self.weight.copy_(torch.sign(self.weight) * (b + self.weight.abs()) / 2)


if __name__ == "__main__":
    layers.Subsampling.reset_parameters = reset
    from lenet5.__main__ import main

    sys.exit(main(sys.argv[1:]))
