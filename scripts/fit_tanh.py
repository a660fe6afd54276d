"""Fit the rational tanh of lenet5/engine.py: tanh(x) ~ x P(x^2) / Q(x^2), Q(0) = 1, on 0 < x <= 9.

Linear least squares on the relative error, reweighted towards the minimax solution (Lawson's
iteration). Prints the coefficients and the worst error when evaluated in float64 and rounded to float32.
Usage: python scripts/fit_tanh.py [DEGREE_P DEGREE_Q]
"""

import sys

import numpy as np


def fit(p: int, q: int, xmax: float = 9.0, iters: int = 60):
    x = np.linspace(0, xmax, 40001)[1:]
    t, x2 = np.tanh(x), x * x
    numerator_terms = np.stack([x * x2**k for k in range(p)], 1)
    denominator_terms = np.stack([-t * x2**k for k in range(1, q + 1)], 1)
    a = np.concatenate([numerator_terms, denominator_terms], 1)
    w, best = np.ones_like(x), None
    for _ in range(iters):
        scale = np.sqrt(w) / t
        coef, *_ = np.linalg.lstsq(a * scale[:, None], t * scale, rcond=None)
        num, den = coef[:p], np.concatenate([[1.0], coef[p:]])
        err = np.abs(x * np.polyval(num[::-1], x2) / np.polyval(den[::-1], x2) - t) / t
        if best is None or err.max() < best[0]:
            best = (err.max(), num, den)
        w = w * (err / err.max() + 1e-3)
        w /= w.sum()
    return best


def main() -> None:
    p, q = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) == 3 else (5, 4)
    rel, num, den = fit(p, q)
    xs = np.linspace(-9, 9, 400001).astype(np.float32)
    x64 = xs.astype(np.float64)
    approx = (x64 * np.polyval(num[::-1], x64**2) / np.polyval(den[::-1], x64**2)).astype(np.float32)
    print(f"relative error of the fit (float64): {rel:.2e}")
    print(f"max |approx - tanh| in float32: {np.abs(approx - np.tanh(x64)).max():.2e}")
    print(f"poles in x^2 (must not be >= 0): {np.roots(den[::-1])}")
    print("TANH_P =", tuple(float(c) for c in num))
    print("TANH_Q =", tuple(float(c) for c in den))


if __name__ == "__main__":
    main()
