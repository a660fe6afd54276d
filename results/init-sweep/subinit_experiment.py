"""Experiment: subsampling coefficients start away from zero: w = sign(u) (b + |u|) / 2, u ~ U(-b, b)."""
import sys, torch
import lenet5.layers as L
orig = L.Subsampling.reset_parameters
def reset(self):
    orig(self)
    with torch.no_grad():
        b = L.init_bound(self.fan_in(), self.init)
        self.weight.copy_(torch.sign(self.weight) * (b + self.weight.abs()) / 2)
L.Subsampling.reset_parameters = reset
from lenet5.__main__ import main
sys.exit(main(sys.argv[1:]))
