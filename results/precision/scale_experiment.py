"""Experiment: inputs standardised to mean 0 and variance 1 on the 32x32 field (PAPER_NOTES, finding 16).

Sec. II-A's scaling (background -0.1, ink 1.175) is said to give a mean of about 0 and a variance of about 1;
on MNIST in the 32x32 field it gives 0.028 and 0.123. Here value = BACKGROUND + (INK - BACKGROUND) p / 255
with BACKGROUND and INK chosen so that the training set's field has mean 0 and variance 1 (measured by
this script before training). Distortions and noise use the same two values.

    python results/precision/scale_experiment.py train --seed S --quiet --threads 1 --out-dir DIR --run-name NAME
"""

import sys

import lenet5.config as config
import lenet5.data as data
import lenet5.distort as distort
import lenet5.layers as layers


def standardise() -> tuple[float, float]:
    x, _ = data.load_mnist("train", quiet=True)
    mean, std = float(x.mean()), float(x.std())
    background = (config.PIXEL_BACKGROUND - mean) / std
    ink = (config.PIXEL_FOREGROUND - mean) / std
    for module in (data, distort, layers):
        module.PIXEL_BACKGROUND = background
        if hasattr(module, "PIXEL_FOREGROUND"):
            module.PIXEL_FOREGROUND = ink
    x, _ = data.load_mnist("train", quiet=True)
    print(f"background {background:.4f}, ink {ink:.4f}: mean {float(x.mean()):.4f}, variance {float(x.var()):.4f}")
    return background, ink


if __name__ == "__main__":
    standardise()
    from lenet5.__main__ import main

    sys.exit(main(sys.argv[1:]))
