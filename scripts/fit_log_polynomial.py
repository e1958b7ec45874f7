#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The polynomial of fbank's log (src/audio/feature_kernels.cc, log_of_normal): ln(1 + f) =
f - f²/2 + f³ · Q(f) for f in [sqrt(1/2) - 1, sqrt(2) - 1], Q of degree 6, fitted for relative error
of ln(1 + f): weighted least squares on Chebyshev nodes, reweighted toward equal ripple (Lawson's
iteration). Prints the coefficients as float32 literals, Q[0] first, and the largest relative error
of the double-precision polynomial on a fine grid (3.3e-8; half a float32 ulp is 3e-8).

    /usr/bin/python3 scripts/fit_log_polynomial.py
"""
import numpy as np

DEGREE = 6


def main():
    lo, hi = np.sqrt(0.5) - 1, np.sqrt(2) - 1
    k = np.arange(4000)
    f = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / len(k))
    target = (np.log1p(f) - f + f * f / 2) / f**3
    weight = f**3 / np.abs(np.log1p(f))  # an error in Q times this is the relative error of ln
    basis = np.vander(f, DEGREE + 1, increasing=True)
    w = weight
    for _ in range(30):
        coeffs, *_ = np.linalg.lstsq(basis * w[:, None], target * w, rcond=None)
        residual = np.abs((basis @ coeffs - target) * weight) + 1e-30
        w = weight * np.sqrt(residual / residual.max())
    q = np.float32(coeffs).astype(np.float64)  # what the kernel holds
    grid = np.linspace(lo, hi, 400001)
    grid = grid[grid != 0]
    approx = grid - grid * grid / 2 + grid**3 * np.polyval(q[::-1], grid)
    print("Q =", ", ".join(f"{np.float32(c)!r}f".replace("np.float32(", "").replace(")", "") for c in q))
    print(f"largest relative error: {np.max(np.abs(approx / np.log1p(grid) - 1)):.2e}")


if __name__ == "__main__":
    main()
